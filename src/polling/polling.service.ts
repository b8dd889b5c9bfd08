import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleDestroy,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { setMaxListeners } from 'node:events';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Semaphore, sleep, stableHash, withDeadline } from '../common/concurrency';
import { DatabaseUnavailableError, MeterNotFoundError, MeterReadError } from '../common/errors';
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
  /** Ticks skipped while this cycle ran. */
  skippedTicks: number;
  /** Readings written to the database while this cycle ran (its own, and live reads'). */
  stored: number;
}

export interface PollingStats {
  cycles: number;
  skippedTicks: number;
  polls: { ok: number; failed: number };
  lastCycle: CycleSummary | null;
  lastTickAt: Date | null;
  /** When the cycle under way started (null between cycles). */
  cycleStartedAt: Date | null;
}

const TICK = 'polling-tick';
/** At shutdown, how long buffered readings may take to be written (retried while the database fails). */
export const SHUTDOWN_FLUSH_BUDGET_MS = 5000;

/**
 * Reads every enabled meter once per interval. The scheduler only decides whether a cycle may start; the cycle
 * itself is a plain method (tests call it directly). Live reads share the request of a poll already in flight.
 */
@Injectable()
export class PollingService implements OnApplicationBootstrap, OnModuleDestroy, BeforeApplicationShutdown {
  private readonly logger = new Logger(PollingService.name);
  private readonly polling: AppConfig['polling'];
  private readonly inFlight = new Map<string, Promise<PollResult>>();
  private readonly liveReads = new Map<string, Promise<NewReading>>();
  private cycle: Promise<CycleSummary> | null = null;
  /** Aborted when shutdown starts: no new poll is started after it. */
  private readonly draining = new AbortController();
  /** Aborted when the shutdown grace period ends: polls still in flight are abandoned. */
  private readonly shutdown = new AbortController();
  /**
   * What this instance claimed last: while the database cannot be reached (no claim possible) the cycle polls
   * these, at the same rate, and the results wait in the writer's buffer. Keyed by meter id for live reads.
   */
  private lastClaimed = new Map<string, PollTarget>();
  /** When claiming began to fail (null while it works): one warning then, and one every half minute. */
  private claimFailingSince: number | null = null;
  private claimWarnedAt = 0;
  readonly stats: PollingStats = {
    cycles: 0,
    skippedTicks: 0,
    polls: { ok: 0, failed: 0 },
    lastCycle: null,
    lastTickAt: null,
    cycleStartedAt: null,
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
    // Every poll in flight listens to it (up to POLL_CONCURRENCY at once): not a leak, no warning past 10.
    setMaxListeners(0, this.shutdown.signal);
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

  get enabled(): boolean {
    return this.polling.enabled;
  }

  /**
   * Whether polling goes on: the scheduler ticked lately, and no cycle has been running for longer than a cycle
   * can take (its polls, claim and write all have deadlines, so a cycle that old is stuck). True when polling is
   * off. Both allowances are two intervals and 5 s.
   */
  get schedulerAlive(): boolean {
    if (!this.polling.enabled) return true;
    const now = Date.now();
    const allowanceMs = this.stallAllowanceMs;
    const lastTick = this.stats.lastTickAt?.getTime();
    const cycleStarted = this.stats.cycleStartedAt?.getTime();
    const ticking = lastTick !== undefined && now - lastTick < allowanceMs;
    return ticking && (cycleStarted === undefined || now - cycleStarted < allowanceMs);
  }

  /** How old the last tick, or the cycle under way, may be before the scheduler counts as stalled. */
  get stallAllowanceMs(): number {
    return this.polling.intervalSeconds * 2000 + 5000;
  }

  /** Starts a cycle unless the previous one still runs: then this tick is skipped and counted. */
  tick(): void {
    if (this.draining.signal.aborted) return;
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
    this.stats.cycleStartedAt = new Date();
    try {
      return await this.pollAll(started);
    } finally {
      this.stats.cycleStartedAt = null;
    }
  }

  private async pollAll(started: number): Promise<CycleSummary> {
    const skippedBefore = this.stats.skippedTicks;
    const writtenBefore = this.writer.stats.readingsWritten;
    // Claimed until just before the next tick, so that another instance cannot poll them in this interval.
    const claimMs = Math.max(this.polling.intervalSeconds * 1000 - Math.min(1000, this.polling.intervalSeconds * 100), 1);
    const targets = await this.claim(claimMs);
    const summary: CycleSummary = { meters: targets.length, ok: 0, failed: 0, durationMs: 0, skippedTicks: 0, stored: 0 };
    const slots = new Semaphore(this.polling.concurrency);
    const polls: Promise<void>[] = [];
    for (const { target, offsetMs } of this.schedule(targets)) {
      await sleep(started + offsetMs - performance.now(), this.draining.signal);
      if (this.draining.signal.aborted) break;
      await slots.acquire();
      if (this.draining.signal.aborted) {
        slots.release();
        break;
      }
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
    // The write goes on in the background past the deadline (a hanging database): the next tick is not held.
    await withDeadline(this.writer.flushIfDue(), this.databaseWaitMs, 'writing the cycle').catch((error: unknown) => {
      this.logger.warn(`cycle results stay buffered: ${String(error)}`);
    });
    summary.durationMs = Math.round(performance.now() - started);
    summary.skippedTicks = this.stats.skippedTicks - skippedBefore;
    summary.stored = this.writer.stats.readingsWritten - writtenBefore;
    this.stats.cycles++;
    this.metrics.cycleDuration.observe(summary.durationMs / 1000);
    this.stats.lastCycle = summary;
    this.logCycle(summary);
    return summary;
  }

  /** The one line per cycle: its figures as fields (`cycle.ok`, ...) for log queries, and as text for people. */
  private logCycle(summary: CycleSummary): void {
    const cycle = {
      meters: summary.meters,
      ok: summary.ok,
      failed: summary.failed,
      duration_ms: summary.durationMs,
      skipped_ticks: summary.skippedTicks,
      stored: summary.stored,
      buffered: this.writer.stats.buffered,
    };
    this.logger.log(
      { cycle },
      `cycle: ${cycle.meters} meters, ${cycle.ok} ok, ${cycle.failed} failed, ${cycle.duration_ms} ms, ` +
        `${cycle.stored} readings stored, ${cycle.buffered} results buffered`,
    );
  }

  /**
   * The meters due now, claimed for this interval. When the database cannot be reached, the meters this instance
   * claimed last time: polling goes on through an outage (the claim cannot keep two instances apart then, but each
   * keeps to its own last share).
   */
  /** How long a cycle or a live read waits for the database before going on without it. */
  private get databaseWaitMs(): number {
    return Math.min(5000, (this.polling.intervalSeconds * 1000) / 4);
  }

  private async claim(claimMs: number): Promise<PollTarget[]> {
    try {
      // A database that hangs (rather than refusing) must not hold the cycle: past the deadline, the last claim.
      const targets = await withDeadline(this.meters.claimDue(claimMs), this.databaseWaitMs, 'claiming meters');
      this.lastClaimed = new Map(targets.map((target) => [target.meterId, target]));
      if (this.claimFailingSince !== null) {
        this.logger.log(`claiming meters works again after ${Math.round((Date.now() - this.claimFailingSince) / 1000)} s`);
        this.claimFailingSince = null;
      }
      return targets;
    } catch (error) {
      const now = Date.now();
      this.claimFailingSince ??= now;
      if (this.claimFailingSince === now || now - this.claimWarnedAt >= 30_000) {
        this.claimWarnedAt = now;
        this.logger.warn(
          `cannot claim meters (${error instanceof Error ? error.message : String(error)}): polling the ` +
            `${this.lastClaimed.size} meters of the last claim, results buffered`,
        );
      }
      return [...this.lastClaimed.values()];
    }
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
    const target = await withDeadline(this.meters.findTarget(meterId), this.databaseWaitMs, 'finding the meter').catch(() => {
      // The database is away: a meter this instance polls is still read (its reading waits in the buffer).
      const known = this.lastClaimed.get(meterId);
      if (known) return known;
      throw new DatabaseUnavailableError();
    });
    if (!target) throw new MeterNotFoundError(meterId);
    const result = await this.pollShared(target);
    if (!result.ok) throw new MeterReadError(result.kind, result.message);
    // Also queued by pollShared for the batch; writing it now is idempotent (same meter and taken_at). While the
    // database is away it is not written now: the answer comes at once, the reading waits in the buffer.
    // Past the deadline the answer does not wait: the reading is in the write buffer already.
    await withDeadline(this.writer.writeNow(result), this.databaseWaitMs, 'storing the live reading').catch(() => undefined);
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

  /**
   * SIGTERM, first step (the earliest hook of app.close()): no new cycles and no new polls; a cycle under way stops
   * starting them.
   */
  onModuleDestroy(): void {
    if (this.scheduler.doesExist('interval', TICK)) this.scheduler.deleteInterval(TICK);
    this.draining.abort();
  }

  /**
   * SIGTERM, second step: polls in flight get the grace period, then are abandoned; buffered results are written,
   * retried for SHUTDOWN_FLUSH_BUDGET_MS while the database fails. What is left then is logged: it is lost when
   * the process exits (main.ts exits 1 for it). The meter client and the database stay open until this is done.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.onModuleDestroy();
    const grace = setTimeout(() => this.shutdown.abort(), this.polling.shutdownGraceMs);
    try {
      await this.cycle?.catch(() => undefined);
      await Promise.allSettled(this.inFlight.values());
    } finally {
      clearTimeout(grace);
      this.shutdown.abort();
    }
    const left = await this.writer.drain(SHUTDOWN_FLUSH_BUDGET_MS);
    if (left.results > 0) {
      this.logger.error(
        `${left.results} poll results (${left.readings} readings) could not be written at shutdown ` +
          `(database unreachable for ${SHUTDOWN_FLUSH_BUDGET_MS / 1000} s): they are lost`,
      );
    } else {
      this.logger.log(`every poll result written (${this.writer.stats.readingsWritten} readings since start)`);
    }
  }
}
