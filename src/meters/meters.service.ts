import { Inject, Injectable } from '@nestjs/common';
import { AddressNotAllowedError, InvalidInputError, MeterNotFoundError } from '../common/errors';
import { AddressPolicy } from '../common/network';
import { Meter } from './meter.entity';
import { MeterChanges, MeterListQuery, MetersRepository } from './meters.repository';

export interface MeterInput {
  meterId: string;
  address: string;
  port: number;
  name?: string | null;
  enabled?: boolean;
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
