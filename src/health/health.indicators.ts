import { Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { InjectDataSource } from '@nestjs/typeorm';
import { IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import { DeadlineExceededError, withDeadline } from '../common/concurrency';
import { PollingService } from '../polling/polling.service';
import { ReadingWriter, WriterStats } from '../polling/reading-writer';

/** A database that does not answer within this is reported down (a black-holed connection would wait 5 s). */
export const DATABASE_CHECK_TIMEOUT_MS = 2000;
/**
 * The write buffer counts as overflowing from this share of POLL_BUFFER_MAX_RESULTS on: the instance is taken out
 * of rotation before it has to drop readings, while a fifth of the buffer is still free.
 */
export const BUFFER_READY_MAX_FILL_PERCENT = 80;
/** The event loop counts as stuck when, over the last window, half of its turns waited longer than this. */
export const EVENT_LOOP_STUCK_MS = 1000;
const EVENT_LOOP_WINDOW_MS = 10_000;

export interface EventLoopDelay {
  p50: number;
  p99: number;
  max: number;
}

/** Why the write buffer makes the instance not ready, or null when it does not. */
export function bufferProblem(
  stats: Pick<WriterStats, 'buffered' | 'lastDroppedAt'>,
  capacity: number,
  now: number,
  dropWindowMs: number,
): string | null {
  if (stats.lastDroppedAt !== null && now - stats.lastDroppedAt.getTime() < dropWindowMs) {
    return `poll results were dropped ${Math.round((now - stats.lastDroppedAt.getTime()) / 1000)} s ago (buffer full)`;
  }
  const fill = fillPercent(stats.buffered, capacity);
  if (fill >= BUFFER_READY_MAX_FILL_PERCENT) {
    return `buffer ${fill}% full (not ready from ${BUFFER_READY_MAX_FILL_PERCENT}%)`;
  }
  return null;
}

export function fillPercent(buffered: number, capacity: number): number {
  return Math.floor((buffered / capacity) * 1000) / 10;
}

/** Why the event loop counts as stuck, or null. */
export function eventLoopProblem(delay: EventLoopDelay): string | null {
  return delay.p50 > EVENT_LOOP_STUCK_MS
    ? `event loop blocked: median delay ${delay.p50} ms over the last ${EVENT_LOOP_WINDOW_MS / 1000} s`
    : null;
}

/**
 * The checks behind /health/live and /health/ready, as terminus indicators: each answers `{key: {status, ...}}`
 * with what it saw, whether up or down, and a `message` when down.
 */
@Injectable()
export class HealthIndicators implements OnModuleInit, OnModuleDestroy {
  private readonly startedAt = Date.now();
  private histogram: IntervalHistogram | null = null;
  private lastWindow: EventLoopDelay | null = null;
  private windowTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly indicator: HealthIndicatorService,
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly polling: PollingService,
    private readonly writer: ReadingWriter,
  ) {}

  onModuleInit(): void {
    this.histogram = monitorEventLoopDelay({ resolution: 20 });
    this.histogram.enable();
    this.windowTimer = setInterval(() => {
      this.lastWindow = this.currentDelay();
      this.histogram?.reset();
    }, EVENT_LOOP_WINDOW_MS);
    this.windowTimer.unref();
  }

  onModuleDestroy(): void {
    if (this.windowTimer) clearInterval(this.windowTimer);
    this.histogram?.disable();
  }

  /** Liveness: the process answers, and its event loop is not blocked most of the time. */
  process(): HealthIndicatorResult<'process'> {
    const check = this.indicator.check('process');
    const delay = this.lastWindow ?? this.currentDelay();
    const details = {
      pid: process.pid,
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
      event_loop_delay_ms: delay,
    };
    const problem = eventLoopProblem(delay);
    return problem === null ? check.up(details) : check.down({ ...details, message: problem });
  }

  /** Readiness: PostgreSQL answers `SELECT 1` within DATABASE_CHECK_TIMEOUT_MS. */
  async database(): Promise<HealthIndicatorResult<'database'>> {
    const check = this.indicator.check('database');
    const started = performance.now();
    try {
      await withDeadline(this.dataSource.query('SELECT 1'), DATABASE_CHECK_TIMEOUT_MS, 'the database check');
      return check.up({ response_time_ms: Math.round(performance.now() - started) });
    } catch (error) {
      // The driver's text may name hosts and users: the probe, open to anyone, says only what happened.
      return check.down({
        message: error instanceof DeadlineExceededError ? `no answer within ${DATABASE_CHECK_TIMEOUT_MS} ms` : 'unreachable',
      });
    }
  }

  /** Readiness: the scheduler ticks and no cycle is stuck (always up with POLLING_ENABLED=false). */
  scheduler(): HealthIndicatorResult<'scheduler'> {
    const check = this.indicator.check('scheduler');
    const { lastTickAt, cycleStartedAt } = this.polling.stats;
    const details = {
      polling_enabled: this.polling.enabled,
      last_tick_at: lastTickAt?.toISOString() ?? null,
      cycle_running_since: cycleStartedAt?.toISOString() ?? null,
      skipped_ticks: this.polling.stats.skippedTicks,
    };
    if (this.polling.schedulerAlive) return check.up(details);
    const now = Date.now();
    const message =
      cycleStartedAt !== null && now - cycleStartedAt.getTime() >= this.polling.stallAllowanceMs
        ? `a cycle has been running for ${Math.round((now - cycleStartedAt.getTime()) / 1000)} s`
        : lastTickAt === null
          ? 'the scheduler has not ticked yet'
          : `no tick for ${Math.round((now - lastTickAt.getTime()) / 1000)} s`;
    return check.down({ ...details, message });
  }

  /** Readiness: the write buffer is below BUFFER_READY_MAX_FILL_PERCENT and dropped nothing lately. */
  buffer(): HealthIndicatorResult<'buffer'> {
    const check = this.indicator.check('buffer');
    const stats = this.writer.stats;
    const capacity = this.writer.capacity;
    const details = {
      buffered: stats.buffered,
      capacity,
      fill_percent: fillPercent(stats.buffered, capacity),
      ready_below_percent: BUFFER_READY_MAX_FILL_PERCENT,
      dropped: stats.dropped,
      last_dropped_at: stats.lastDroppedAt?.toISOString() ?? null,
      writes_failing_since: stats.failingSince?.toISOString() ?? null,
    };
    const problem = bufferProblem(stats, capacity, Date.now(), this.polling.stallAllowanceMs);
    return problem === null ? check.up(details) : check.down({ ...details, message: problem });
  }

  private currentDelay(): EventLoopDelay {
    const histogram = this.histogram;
    // An empty histogram (no turn measured yet) reports huge percentiles: nothing measured is no delay.
    if (!histogram || histogram.count === 0) return { p50: 0, p99: 0, max: 0 };
    const ms = (ns: number) => Math.round(ns / 1e5) / 10;
    return { p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max) };
  }
}
