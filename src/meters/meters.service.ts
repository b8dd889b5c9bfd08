import { Inject, Injectable } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validateSync, ValidationError } from 'class-validator';
import { AddressNotAllowedError, InvalidInputError, MeterNotFoundError } from '../common/errors';
import { AddressPolicy } from '../common/network';
import { Meter } from './meter.entity';
import { BulkResultDto } from './dto/bulk.dto';
import { CreateMeterDto } from './dto/meter.dto';
import { MeterChanges, MeterListQuery, MetersRepository, NewMeter } from './meters.repository';

export interface MeterInput {
  meterId: string;
  address: string;
  port: number;
  name?: string | null;
  enabled?: boolean;
}

/** A bulk row the controller could already not read (a CSV row with extra cells): refused with its reasons. */
export class RefusedRow {
  constructor(
    readonly reasons: string[],
    readonly meterId: string | null,
  ) {}
}

@Injectable()
export class MetersService {
  constructor(
    private readonly meters: MetersRepository,
    @Inject(AddressPolicy) private readonly addressPolicy: AddressPolicy,
  ) {}

  create(input: MeterInput): Promise<Meter> {
    return this.meters.insert({
      meterId: input.meterId,
      address: this.allowedAddress(input.address),
      port: input.port,
      name: input.name ?? null,
      enabled: input.enabled ?? true,
    });
  }

  /**
   * Registers many meters with one insert. Each row is validated like a single POST; a refused row (bad field,
   * taken id or address, duplicate within the request) never blocks the others.
   */
  async bulkCreate(rows: readonly unknown[]): Promise<BulkResultDto> {
    const refused: BulkResultDto['refused'] = [];
    const accepted: (NewMeter & { row: number })[] = [];
    const rowOfId = new Map<string, number>();
    const rowOfAddress = new Map<string, number>();
    rows.forEach((raw, row) => {
      if (raw instanceof RefusedRow) {
        refused.push({ row, meter_id: raw.meterId, reasons: raw.reasons });
        return;
      }
      const meterId = typeof (raw as { meter_id?: unknown })?.meter_id === 'string' ? (raw as { meter_id: string }).meter_id : null;
      const reasons = validateRow(raw);
      let address = '';
      if (reasons.length === 0) {
        const verdict = this.addressPolicy.check((raw as CreateMeterDto).address);
        if (verdict.allowed) address = verdict.address;
        else reasons.push(`address ${verdict.reason}`);
      }
      if (reasons.length > 0) {
        refused.push({ row, meter_id: meterId, reasons });
        return;
      }
      const dto = raw as CreateMeterDto;
      const addressKey = `${address} ${dto.port}`;
      const sameId = rowOfId.get(dto.meter_id);
      const sameAddress = rowOfAddress.get(addressKey);
      if (sameId !== undefined || sameAddress !== undefined) {
        refused.push({
          row,
          meter_id: dto.meter_id,
          reasons: [`duplicate of row ${sameId ?? sameAddress} in this request`],
        });
        return;
      }
      rowOfId.set(dto.meter_id, row);
      rowOfAddress.set(addressKey, row);
      accepted.push({
        row,
        meterId: dto.meter_id,
        address,
        port: dto.port,
        name: dto.name ?? null,
        enabled: dto.enabled ?? true,
      });
    });
    const { inserted, existingIds } = await this.meters.insertMany(accepted);
    for (const meter of accepted) {
      if (inserted.has(meter.meterId)) continue;
      refused.push({
        row: meter.row,
        meter_id: meter.meterId,
        reasons: [
          existingIds.has(meter.meterId)
            ? `meter "${meter.meterId}" already exists`
            : `another meter is already registered at ${meter.address} port ${meter.port}`,
        ],
      });
    }
    refused.sort((a, b) => a.row - b.row);
    const created = accepted.filter((m) => inserted.has(m.meterId)).map((m) => m.meterId);
    return { created_count: created.length, refused_count: refused.length, created, refused };
  }

  list(query: MeterListQuery): Promise<{ items: Meter[]; total: number }> {
    return this.meters.list(query);
  }

  async get(meterId: string): Promise<Meter> {
    const meter = await this.meters.findById(meterId);
    if (!meter) throw new MeterNotFoundError(meterId);
    return meter;
  }

  async update(meterId: string, changes: MeterChanges): Promise<Meter> {
    const defined = Object.fromEntries(
      Object.entries(changes).filter(([, value]) => value !== undefined),
    ) as MeterChanges;
    if (Object.keys(defined).length === 0) {
      throw new InvalidInputError('nothing to change: give at least one of address, port, name, enabled');
    }
    if (defined.address !== undefined) defined.address = this.allowedAddress(defined.address);
    if (defined.port !== undefined || defined.address !== undefined) {
      // A meter that moves is a new source: let the next interval poll it at once.
      defined.pollClaimedUntil = null;
    }
    const meter = await this.meters.update(meterId, defined);
    if (!meter) throw new MeterNotFoundError(meterId);
    return meter;
  }

  async remove(meterId: string): Promise<void> {
    if (!(await this.meters.delete(meterId))) throw new MeterNotFoundError(meterId);
  }

  /** The SSRF guard at the door; the poller checks again before every request. */
  allowedAddress(address: string): string {
    const verdict = this.addressPolicy.check(address);
    if (!verdict.allowed) throw new AddressNotAllowedError(`address ${verdict.reason}`);
    return verdict.address;
  }
}

/** The same rules as a single POST (CreateMeterDto), one message per bad field. */
function validateRow(raw: unknown): string[] {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return ['row must be a JSON object'];
  const errors = validateSync(plainToInstance(CreateMeterDto, raw), {
    whitelist: true,
    forbidNonWhitelisted: true,
    stopAtFirstError: true,
  });
  return errors.flatMap(messagesOf);
}

function messagesOf(error: ValidationError): string[] {
  return Object.values(error.constraints ?? {});
}
