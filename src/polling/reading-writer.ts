import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { sleep } from '../common/concurrency';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { HealthUpdate, MetersRepository } from '../meters/meters.repository';
import { NewReading, ReadingsRepository } from '../readings/readings.repository';
import { PollResult } from './meter-client';

export interface WriterStats {
  readingsWritten: number;
  /** Write attempts that failed (batches and live reads). */
  writeFailures: number;
  /** Poll results not written yet: waiting in the buffer or in a write under way. */
  buffered: number;
  /** Poll results dropped, oldest first, because the buffer was full. */
  dropped: number;
  /** When results were last dropped (null: never). */
  lastDroppedAt: Date | null;
  /** When the current run of failed writes began (null while writes succeed). */
  failingSince: Date | null;
}

/** What a shutdown could not write. */
export interface Unwritten {
  results: number;
  readings: number;
}

/** Results trickle in during a cycle: they are written at least this often, so readings show up without waiting. */
const FLUSH_EVERY_MS = 1000;
/**
 * While the database fails, writes are retried after 0.5 s, 1 s, 2 s, 4 s, then every 5 s: a long outage costs
 * one connection attempt every 5 s (never a pile of them), and the buffer is written within ~5 s of the return.
 */
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 5000;
/** One log line when an outage starts, one when it ends, and a reminder this often in between. */
const OUTAGE_LOG_EVERY_MS = 30_000;
const DROP_LOG_EVERY_MS = 10_000;
/** At shutdown the budget is short: retry this often within it. */
const DRAIN_RETRY_MS = 500;

/**
 * Buffers poll results and writes them in batches: per batch one statement for readings and one for health, in
 * one transaction. When the database fails, the batch goes back to the head of the buffer (order kept, original
 * taken_at kept) and is retried with backoff; the buffer is bounded (POLL_BUFFER_MAX_RESULTS) and drops the
 * oldest results, counted and logged, when full. Polling never waits for the database: results are queued.
 */
@Injectable()
export class ReadingWriter implements OnApplicationShutdown {
  private readonly logger = new Logger(ReadingWriter.name);
  private readonly queue = new ResultQueue();
  /** The batch being written: out of the queue, still counted as buffered. */
  private writing: readonly PollResult[] = [];
  /**
   * Results of `writing` that the bound has already claimed while it was written (its oldest ones): dropped if
   * the write fails, simply written if it succeeds. Keeps "oldest first" exact while a write is under way.
   */
  private owed = 0;
  private flushing: Promise<void> | null = null;
  private failedAttempts = 0;
  private retryAt = 0;
  private lastOutageLog = 0;
  private droppedSinceLog = 0;
  private lastDropLog = 0;
  private readonly batchSize: number;
  private readonly maxBuffered: number;
  private readonly timer: NodeJS.Timeout;
  readonly stats: WriterStats = {
    readingsWritten: 0,
    writeFailures: 0,
    buffered: 0,
    dropped: 0,
    lastDroppedAt: null,
    failingSince: null,
  };

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly readings: ReadingsRepository,
    private readonly meters: MetersRepository,
    private readonly metrics: MetricsService,
    @Inject(ConfigService) config: ConfigService<AppConfig, true>,
  ) {
    const polling = config.get('polling', { infer: true });
    this.batchSize = polling.writeBatchSize;
    this.maxBuffered = polling.maxBufferedResults;
    this.timer = setInterval(() => {
      if (this.retryDue()) void this.flush().catch(() => undefined);
    }, FLUSH_EVERY_MS);
    this.timer.unref();
  }

  /** How many poll results the buffer holds before it drops the oldest (POLL_BUFFER_MAX_RESULTS). */
  get capacity(): number {
    return this.maxBuffered;
  }

  /** Queues a result; a full batch starts a write in the background (unless the database is in backoff). */
  enqueue(result: PollResult): void {
    this.queue.push(result);
    this.enforceBound();
    this.setBuffered();
    if (this.queue.length >= this.batchSize && !this.flushing && this.retryDue()) {
      void this.flush().catch(() => undefined);
    }
  }

  /**
   * Writes everything buffered now, whatever the backoff says. Resolves once the buffer is empty; rejects
   * (keeping the results) when the database fails. Calls made while a write runs wait for it and then write what
   * came meanwhile.
   */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    if (this.queue.length === 0) return;
    this.flushing = this.writeAll();
    try {
      await this.flushing;
    } finally {
      this.flushing = null;
    }
  }

  /**
   * What a polling cycle calls at its end: flush() while the database works, so a cycle's readings are stored
   * when it ends; while writes fail, at most a retry in the background when the backoff allows one, so a cycle
   * never waits on a database that is away.
   */
  flushIfDue(): Promise<void> {
    if (this.failedAttempts === 0) return this.flush();
    if (this.retryDue()) void this.flush().catch(() => undefined);
    return Promise.resolve();
  }

  /**
   * A live read answers once its reading is stored. The result is already queued (every poll result is): this
   * writes it now as well (the batch's later copy then changes nothing). While the database fails it does not
   * try: the reading waits in the buffer and the answer does not wait for the database. True when stored now.
   */
  async writeNow(result: PollResult): Promise<boolean> {
    if (this.failedAttempts > 0) return false;
    try {
      await this.writeBatch([result]);
      this.recovered();
      return true;
    } catch (error) {
      this.failed(error);
      return false;
    }
  }

  /**
   * Shutdown: writes everything buffered, retrying every DRAIN_RETRY_MS while the database fails, for at most
   * `budgetMs`. Resolves with what is still unwritten (lost once the process exits).
   */
  async drain(budgetMs: number): Promise<Unwritten> {
    const deadline = Date.now() + budgetMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let timer: NodeJS.Timeout | undefined;
      const written = await Promise.race([
        this.flush().then(
          () => true,
          () => false,
        ),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), left))),
      ]);
      clearTimeout(timer);
      if (written) break;
      // The outage backoff would leave one or two attempts in the budget: the last moments retry more often.
      await sleep(Math.min(DRAIN_RETRY_MS, deadline - Date.now()));
    }
    return this.unwritten();
  }

  /** Poll results (and the readings among them) not written yet. */
  unwritten(): Unwritten {
    const pending = [...this.writing.slice(this.owed), ...this.queue.items()];
    return { results: pending.length, readings: pending.filter((result) => result.ok).length };
  }

  private retryDue(): boolean {
    return this.failedAttempts === 0 || (Date.now() >= this.retryAt && !this.flushing);
  }

  private async writeAll(): Promise<void> {
    while (this.queue.length > 0) {
      this.writing = this.queue.take(this.batchSize);
      try {
        await this.writeBatch(this.writing);
        this.writing = [];
        this.owed = 0;
        this.recovered();
      } catch (error) {
        const dropped = this.owed;
        this.queue.putBack(this.writing.slice(dropped));
        this.writing = [];
        this.owed = 0;
        this.countDropped(dropped);
        this.failed(error);
        throw error;
      } finally {
        this.setBuffered();
      }
    }
  }

  private async writeBatch(batch: readonly PollResult[]): Promise<void> {
    const readings: NewReading[] = [];
    for (const result of batch) if (result.ok) readings.push(result.reading);
    const written = await this.dataSource.transaction(async (manager) => {
      const count = await this.readings.insertBatch(readings, manager);
      await this.meters.recordHealth(latestPerMeter(batch).map(toHealthUpdate), manager);
      return count;
    });
    this.stats.readingsWritten += written;
    this.metrics.readingsWritten.inc(written);
  }

  /** Drops the oldest results beyond POLL_BUFFER_MAX_RESULTS: first those of a write under way, then queued ones. */
  private enforceBound(): void {
    let excess = this.queue.length + this.writing.length - this.owed - this.maxBuffered;
    if (excess <= 0) return;
    const fromWriting = Math.min(excess, this.writing.length - this.owed);
    this.owed += fromWriting;
    excess -= fromWriting;
    this.countDropped(this.queue.dropOldest(excess));
  }

  private countDropped(count: number): void {
    if (count <= 0) return;
    this.stats.dropped += count;
    this.stats.lastDroppedAt = new Date();
    this.metrics.dropped.inc(count);
    this.droppedSinceLog += count;
    const now = Date.now();
    if (now - this.lastDropLog >= DROP_LOG_EVERY_MS) {
      this.logger.error(
        `write buffer full (${this.maxBuffered} results): dropped the ${this.droppedSinceLog} oldest poll results ` +
          `(${this.stats.dropped} since start)`,
      );
      this.lastDropLog = now;
      this.droppedSinceLog = 0;
    }
  }

  private failed(error: unknown): void {
    this.stats.writeFailures++;
    this.metrics.writeFailures.inc();
    this.failedAttempts++;
    const now = Date.now();
    this.retryAt = now + Math.min(FIRST_RETRY_MS * 2 ** Math.min(this.failedAttempts - 1, 20), MAX_RETRY_MS);
    if (this.stats.failingSince === null) {
      this.stats.failingSince = new Date(now);
      this.lastOutageLog = now;
      this.logger.error(
        `database write failed, ${this.buffered()} poll results kept for retry (backoff up to ` +
          `${MAX_RETRY_MS / 1000} s): ${describe(error)}`,
      );
    } else if (now - this.lastOutageLog >= OUTAGE_LOG_EVERY_MS) {
      this.lastOutageLog = now;
      this.logger.warn(
        `database writes failing for ${Math.round((now - this.stats.failingSince.getTime()) / 1000)} s: ` +
          `${this.buffered()} poll results buffered, ${this.stats.dropped} dropped so far: ${describe(error)}`,
      );
    }
  }

  private recovered(): void {
    if (this.stats.failingSince === null) return;
    const seconds = Math.round((Date.now() - this.stats.failingSince.getTime()) / 1000);
    this.logger.log(
      `database writable again after ${seconds} s (${this.failedAttempts} failed attempts): writing ` +
        `${this.buffered()} buffered poll results`,
    );
    this.stats.failingSince = null;
    this.failedAttempts = 0;
    this.retryAt = 0;
  }

  private buffered(): number {
    return this.queue.length + this.writing.length - this.owed;
  }

  private setBuffered(): void {
    this.stats.buffered = this.buffered();
    this.metrics.buffered.set(this.stats.buffered);
  }

  /** After PollingService.beforeApplicationShutdown: results keep being written through the grace period. */
  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
  }
}

/**
 * First in, first out, with taking from the front and dropping the oldest in amortised O(1): the buffer may hold
 * hundreds of thousands of results during an outage, and shifting an array that long on every poll would not do.
 */
class ResultQueue {
  private slots: PollResult[] = [];
  private head = 0;

  get length(): number {
    return this.slots.length - this.head;
  }

  push(result: PollResult): void {
    this.slots.push(result);
  }

  /** Removes and returns up to `n` results from the front. */
  take(n: number): PollResult[] {
    const taken = this.slots.slice(this.head, this.head + n);
    this.head += taken.length;
    this.compact();
    return taken;
  }

  /** Puts results that could not be written back at the front, in their order. */
  putBack(results: readonly PollResult[]): void {
    if (results.length === 0) return;
    if (this.head >= results.length) {
      this.head -= results.length;
      for (let i = 0; i < results.length; i++) this.slots[this.head + i] = results[i];
    } else {
      this.slots = [...results, ...this.slots.slice(this.head)];
      this.head = 0;
    }
  }

  /** Drops up to `n` of the oldest results; returns how many went. */
  dropOldest(n: number): number {
    const count = Math.max(0, Math.min(n, this.length));
    this.head += count;
    this.compact();
    return count;
  }

  items(): PollResult[] {
    return this.slots.slice(this.head);
  }

  private compact(): void {
    if (this.head === this.slots.length) {
      this.slots = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots = this.slots.slice(this.head);
      this.head = 0;
    }
  }
}

/** One UPDATE cannot apply two rows to one meter: keep the newest attempt of each. */
function latestPerMeter(batch: readonly PollResult[]): PollResult[] {
  const latest = new Map<string, PollResult>();
  for (const result of batch) {
    const seen = latest.get(result.meterId);
    if (!seen || seen.attemptedAt <= result.attemptedAt) latest.set(result.meterId, result);
  }
  return [...latest.values()];
}

function toHealthUpdate(result: PollResult): HealthUpdate {
  return {
    meterId: result.meterId,
    ok: result.ok,
    attemptedAt: result.attemptedAt,
    durationMs: result.durationMs,
    error: result.ok ? null : result.message,
    reading: result.ok ? result.reading : null,
    source: result.source,
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
