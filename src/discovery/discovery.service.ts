import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Semaphore } from '../common/concurrency';
import { InvalidInputError, MeterConflictError, NotFoundError } from '../common/errors';
import { METER_ID_PATTERN } from '../common/meter-id';
import { AppConfig } from '../config/app-config';
import { MetersRepository, NewMeter } from '../meters/meters.repository';
import { MetersService } from '../meters/meters.service';
import { parseMeterPayload } from '../polling/meter-payload';
import { MeterClient } from '../polling/meter-client';
import { DiscoveryJobDto, StartDiscoveryDto } from './discovery.dto';

const NOT_A_METER_SAMPLE = 100;
const JOBS_KEPT = 20;

/**
 * Scans an address over a port range and registers what answers like a meter, the id it reports becoming its
 * meter_id. Runs in the background (a scan of 56,000 ports takes a while); one scan at a time.
 */
@Injectable()
export class DiscoveryService implements OnApplicationShutdown {
  private readonly logger = new Logger(DiscoveryService.name);
  private readonly jobs = new Map<number, DiscoveryJobDto>();
  private nextId = 1;
  private running: Promise<void> | null = null;
  private readonly shutdown = new AbortController();
  private readonly concurrency: number;

  constructor(
    private readonly client: MeterClient,
    private readonly meters: MetersRepository,
    private readonly metersService: MetersService,
    @Inject(ConfigService) config: ConfigService<AppConfig, true>,
  ) {
    this.concurrency = config.get('polling', { infer: true }).concurrency;
  }

  start(request: StartDiscoveryDto): DiscoveryJobDto {
    if (request.port_from > request.port_to) {
      throw new InvalidInputError('port_from must not be greater than port_to');
    }
    const address = this.metersService.allowedAddress(request.address);
    if (this.running) throw new MeterConflictError('a discovery scan is already running; wait for it to finish');
    const job: DiscoveryJobDto = {
      id: this.nextId++,
      status: 'running',
      address,
      port_from: request.port_from,
      port_to: request.port_to,
      probed: 0,
      total: request.port_to - request.port_from + 1,
      found: [],
      already_known: [],
      not_a_meter_count: 0,
      not_a_meter: [],
      started_at: new Date().toISOString(),
      finished_at: null,
      error: null,
    };
    this.remember(job);
    this.running = this.scan(job, request.enabled ?? true)
      .catch((error: unknown) => {
        job.status = 'failed';
        job.error = 'the scan stopped on an internal error';
        this.logger.error(`discovery ${job.id} failed: ${String(error)}`);
      })
      .finally(() => {
        job.finished_at = new Date().toISOString();
        this.running = null;
      });
    return job;
  }

  get(id: number): DiscoveryJobDto {
    const job = this.jobs.get(id);
    if (!job) throw new NotFoundError(`discovery scan ${id} does not exist (the last ${JOBS_KEPT} are kept)`);
    return job;
  }

  list(): DiscoveryJobDto[] {
    return [...this.jobs.values()].reverse();
  }

  private async scan(job: DiscoveryJobDto, enabled: boolean): Promise<void> {
    const registered = await this.meters.portsAt(job.address, job.port_from, job.port_to);
    const candidates: NewMeter[] = [];
    const slots = new Semaphore(this.concurrency);
    const probes: Promise<void>[] = [];
    for (let port = job.port_from; port <= job.port_to && !this.shutdown.signal.aborted; port++) {
      const known = registered.get(port);
      if (known !== undefined) {
        job.already_known.push({ port, meter_id: known, reason: 'a meter is already registered at this address and port' });
        job.probed++;
        continue;
      }
      await slots.acquire();
      probes.push(
        this.probe(job.address, port)
          .then((outcome) => {
            if (outcome.ok) candidates.push({ meterId: outcome.meterId, address: job.address, port, name: null, enabled });
            else {
              job.not_a_meter_count++;
              if (job.not_a_meter.length < NOT_A_METER_SAMPLE) job.not_a_meter.push({ port, reason: outcome.reason });
            }
          })
          .finally(() => {
            job.probed++;
            slots.release();
          }),
      );
    }
    await Promise.all(probes);
    await this.register(job, candidates);
    job.found.sort((a, b) => a.port - b.port);
    job.already_known.sort((a, b) => a.port - b.port);
    job.not_a_meter.sort((a, b) => a.port - b.port);
    job.status = 'done';
    this.logger.log(
      `discovery ${job.id}: ${job.found.length} found, ${job.already_known.length} already known, ` +
        `${job.not_a_meter_count} not a meter`,
    );
  }

  /** Whether a port answers like a meter: a valid payload whose own id is a valid meter id. */
  private async probe(address: string, port: number): Promise<{ ok: true; meterId: string } | { ok: false; reason: string }> {
    const answer = await this.client.fetchBody(address, port, this.shutdown.signal, { keepAlive: false });
    if (!answer.ok) return { ok: false, reason: answer.message };
    let id: unknown;
    try {
      id = (JSON.parse(answer.body) as { id?: unknown } | null)?.id;
    } catch {
      return { ok: false, reason: 'bad-payload: body is not JSON' };
    }
    const meterId = typeof id === 'string' ? id : Number.isSafeInteger(id) ? String(id) : null;
    if (meterId === null || !METER_ID_PATTERN.test(meterId)) {
      return { ok: false, reason: 'bad-payload: no usable meter id in the answer' };
    }
    const payload = parseMeterPayload(answer.body, meterId);
    return payload.ok ? { ok: true, meterId } : { ok: false, reason: `${payload.kind}: ${payload.reason}` };
  }

  private async register(job: DiscoveryJobDto, candidates: NewMeter[]): Promise<void> {
    const seen = new Set<string>();
    const unique = candidates.filter((meter) => {
      if (seen.has(meter.meterId)) {
        job.already_known.push({ port: meter.port, meter_id: meter.meterId, reason: 'another port in this scan reported the same id' });
        return false;
      }
      seen.add(meter.meterId);
      return true;
    });
    const { inserted } = await this.meters.insertMany(unique);
    for (const meter of unique) {
      if (inserted.has(meter.meterId)) job.found.push({ meter_id: meter.meterId, port: meter.port });
      else job.already_known.push({ port: meter.port, meter_id: meter.meterId, reason: `meter "${meter.meterId}" is already registered` });
    }
  }

  private remember(job: DiscoveryJobDto): void {
    this.jobs.set(job.id, job);
    for (const id of this.jobs.keys()) {
      if (this.jobs.size <= JOBS_KEPT) break;
      if (this.jobs.get(id)?.status !== 'running') this.jobs.delete(id);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.shutdown.abort();
    await this.running;
  }
}
