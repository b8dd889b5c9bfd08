import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Semaphore, sleep, stableHash } from '../common/concurrency';
import { MeterNotFoundError, MeterReadError } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { MetersRepository, PollTarget } from '../meters/meters.repository';
import { NewReading } from '../readings/readings.repository';
import { MeterClient, PollResult } from './meter-client';
import { ReadingWriter } from './reading-writer';

export interface CycleSummary {
  meters: number;
  ok: number;
  failed: number;
  durationMs: number;
}

export interface PollingStats {
  cycles: number;
  skippedTicks: number;
  polls: { ok: number; failed: number };
  lastCycle: CycleSummary | null;
  lastTickAt: Date | null;
}

const TICK = 'polling-tick';

/**
 * Reads every enabled meter once per interval. The scheduler only decides whether a cycle may start; the cycle
 * itself is a plain method (tests call it directly). Live reads share the request of a poll already in flight.
 */
@Injectable()
export class PollingService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(PollingService.name);
  private readonly polling: AppConfig['polling'];
  private readonly inFlight = new Map<string, Promise<PollResult>>();
  private readonly liveReads = new Map<string, Promise<NewReading>>();
  private cycle: Promise<CycleSummary> | null = null;
  private readonly shutdown = new AbortController();
  readonly stats: PollingStats = {
    cycles: 0,
    skippedTicks: 0,
    polls: { ok: 0, failed: 0 },
    lastCycle: null,
    lastTickAt: null,
  };

  constructor(
    private readonly client: MeterClient,
    private readonly meters: MetersRepository,
    private readonly writer: ReadingWriter,
    private readonly scheduler: SchedulerRegistry,
    private readonly metrics: MetricsService,
    @Inject(ConfigService) config: ConfigService<AppConfig, true>,
  ) {
    this.polling = config.get('polling', { infer: true });
  }

  onApplicationBootstrap(): void {
    if (!this.polling.enabled) {
      this.logger.log('polling disabled (POLLING_ENABLED=false): API only');
      return;
    }
    this.scheduler.addInterval(TICK, setInterval(() => this.tick(), this.polling.intervalSeconds * 1000));
    // The first cycle starts now rather than one interval after boot.
    setImmediate(() => this.tick());
    this.logger.log(
      `polling every ${this.polling.intervalSeconds} s, deadline ${this.polling.timeoutMs} ms, ` +
        `${this.polling.concurrency} in flight`,
    );
  }

  get schedulerAlive(): boolean {
    if (!this.polling.enabled) return true;
    const lastTick = this.stats.lastTickAt?.getTime();
    return lastTick !== undefined && Date.now() - lastTick < this.polling.intervalSeconds * 2000 + 5000;
  }

  /** Starts a cycle unless the previous one still runs: then this tick is skipped and counted. */
  tick(): void {
    if (this.shutdown.signal.aborted) return;
    this.stats.lastTickAt = new Date();
    if (this.cycle) {
      this.stats.skippedTicks++;
      this.metrics.skippedTicks.inc();
      this.logger.warn(`tick skipped: the previous cycle is still running (${this.stats.skippedTicks} skipped)`);
      return;
    }
    this.cycle = this.runCycle().finally(() => {
      this.cycle = null;
    });
    this.cycle.catch((error: unknown) => this.logger.error(`cycle failed: ${String(error)}`));
  }

  /**
   * One pass over the meters due now: claim them, read each at its offset in the interval (or all at once in
   * burst mode) with bounded concurrency, write the results in batches.
   */
  async runCycle(): Promise<CycleSummary> {
    const started = performance.now();
    // Claimed until just before the next tick, so that another instance cannot poll them in this interval.
    const claimMs = Math.max(this.polling.intervalSeconds * 1000 - Math.min(1000, this.polling.intervalSeconds * 100), 1);
    const targets = await this.meters.claimDue(claimMs);
    const summary: CycleSummary = { meters: targets.length, ok: 0, failed: 0, durationMs: 0 };
    const slots = new Semaphore(this.polling.concurrency);
    const polls: Promise<void>[] = [];
    for (const { target, offsetMs } of this.schedule(targets)) {
      await sleep(started + offsetMs - performance.now(), this.shutdown.signal);
      if (this.shutdown.signal.aborted) break;
      await slots.acquire();
      polls.push(
        this.pollShared(target)
          .then((result) => {
            if (result.ok) summary.ok++;
            else summary.failed++;
          })
          .finally(() => slots.release()),
      );
    }
    await Promise.all(polls);
    await this.writer.flush().catch((error: unknown) => {
      this.logger.warn(`cycle results stay buffered: ${String(error)}`);
    });
    summary.durationMs = Math.round(performance.now() - started);
    this.stats.cycles++;
    this.metrics.cycleDuration.observe(summary.durationMs / 1000);
    this.stats.lastCycle = summary;
    this.logger.log(
      `cycle: ${summary.meters} meters, ${summary.ok} ok, ${summary.failed} failed, ${summary.durationMs} ms`,
    );
    return summary;
  }

  /**
   * When each meter is read, from the start of the cycle. Spread: a stable offset from a hash of the meter id
   * (as Prometheus spreads its targets), inside the part of the interval that leaves a whole deadline before the
   * next tick; the database and the network see an even stream. Burst: everything at once.
   */
  private schedule(targets: readonly PollTarget[]): { target: PollTarget; offsetMs: number }[] {
    const window = this.polling.intervalSeconds * 1000 - this.polling.timeoutMs - Math.min(1000, this.polling.intervalSeconds * 50);
    const spread = this.polling.schedule === 'spread' && window > 0;
    return targets
      .map((target) => ({ target, offsetMs: spread ? stableHash(target.meterId) % window : 0 }))
      .sort((a, b) => a.offsetMs - b.offsetMs);
  }

  /**
   * Reads a meter now and stores the reading before answering. Concurrent live reads of one meter share one
   * look-up and one request, and a poll of that meter already in flight (from the cycle) is shared as well.
   */
  liveRead(meterId: string): Promise<NewReading> {
    let pending = this.liveReads.get(meterId);
    if (!pending) {
      pending = this.readAndStore(meterId).finally(() => this.liveReads.delete(meterId));
      this.liveReads.set(meterId, pending);
    }
    return pending;
  }

  private async readAndStore(meterId: string): Promise<NewReading> {
    const target = await this.meters.findTarget(meterId);
    if (!target) throw new MeterNotFoundError(meterId);
    const result = await this.pollShared(target);
    if (!result.ok) throw new MeterReadError(result.kind, result.message);
    // Also queued by pollShared for the batch; writing it now is idempotent (same meter and taken_at).
    await this.writer.writeNow(result);
    return result.reading;
  }

  private pollShared(target: PollTarget): Promise<PollResult> {
    const pending = this.inFlight.get(target.meterId);
    if (pending) return pending;
    const poll = this.client.read(target, this.shutdown.signal).then((result) => {
      this.inFlight.delete(target.meterId);
      if (result.ok) this.stats.polls.ok++;
      else this.stats.polls.failed++;
      this.metrics.polls.inc({ outcome: result.ok ? 'ok' : result.kind });
      this.metrics.pollDuration.observe(result.durationMs / 1000);
      this.writer.enqueue(result);
      return result;
    });
    this.inFlight.set(target.meterId, poll);
    return poll;
  }

  /** SIGTERM: no new cycles; in-flight polls get the grace period, then are abandoned; buffered results written. */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.scheduler.doesExist('interval', TICK)) this.scheduler.deleteInterval(TICK);
    const grace = setTimeout(() => this.shutdown.abort(), this.polling.shutdownGraceMs);
    try {
      await this.cycle?.catch(() => undefined);
      await Promise.allSettled(this.inFlight.values());
    } finally {
      clearTimeout(grace);
      this.shutdown.abort();
    }
    await this.writer.flush().catch((error: unknown) => {
      this.logger.error(`${this.writer.stats.buffered} poll results could not be written at shutdown: ${String(error)}`);
    });
  }
}
