import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { HealthUpdate, MetersRepository } from '../meters/meters.repository';
import { NewReading, ReadingsRepository } from '../readings/readings.repository';
import { PollResult } from './meter-client';

export interface WriterStats {
  readingsWritten: number;
  writeFailures: number;
  buffered: number;
  dropped: number;
}

/**
 * Buffers poll results and writes them in batches: per batch one statement for readings and one for health, in
 * one transaction. When the database fails, the batch goes back to the head of the buffer (order kept, original
 * taken_at kept) and is retried; the buffer is bounded and drops the oldest results, counted, when full.
 */
@Injectable()
export class ReadingWriter implements OnModuleDestroy {
  private readonly logger = new Logger(ReadingWriter.name);
  private buffer: PollResult[] = [];
  private flushing: Promise<void> | null = null;
  private readonly batchSize: number;
  private readonly maxBuffered: number;
  private readonly timer: NodeJS.Timeout;
  readonly stats: WriterStats = { readingsWritten: 0, writeFailures: 0, buffered: 0, dropped: 0 };

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
    // Results trickle in during a cycle: write at least once a second so readings show up without waiting.
    this.timer = setInterval(() => void this.flush().catch(() => undefined), 1000);
    this.timer.unref();
  }

  /** Queues a result; a full batch starts a write in the background. */
  enqueue(result: PollResult): void {
    this.buffer.push(result);
    if (this.buffer.length > this.maxBuffered) {
      const excess = this.buffer.length - this.maxBuffered;
      this.buffer.splice(0, excess);
      this.stats.dropped += excess;
      this.metrics.dropped.inc(excess);
      this.logger.error(`write buffer full: dropped the ${excess} oldest poll results`);
    }
    this.setBuffered();
    if (this.buffer.length >= this.batchSize) void this.flush().catch(() => undefined);
  }

  /**
   * Writes everything buffered now. Resolves once the buffer is empty; rejects (keeping the results) when the
   * database fails. Calls made while a write runs wait for it and then write what came meanwhile.
   */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    if (this.buffer.length === 0) return;
    this.flushing = this.writeAll();
    try {
      await this.flushing;
    } finally {
      this.flushing = null;
    }
  }

  /** Writes one result now (a live read answers only once its reading is stored), or buffers it on failure. */
  async writeNow(result: PollResult): Promise<void> {
    try {
      await this.writeBatch([result]);
    } catch (error) {
      this.countWriteFailure();
      this.logger.warn(`live reading kept for retry: ${describe(error)}`);
      this.enqueue(result);
    }
  }

  private async writeAll(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = this.buffer.splice(0, this.batchSize);
      try {
        await this.writeBatch(batch);
      } catch (error) {
        this.buffer.unshift(...batch);
        this.countWriteFailure();
        this.logger.warn(`write of ${batch.length} poll results failed, kept for retry: ${describe(error)}`);
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

  private setBuffered(): void {
    this.stats.buffered = this.buffer.length;
    this.metrics.buffered.set(this.buffer.length);
  }

  private countWriteFailure(): void {
    this.stats.writeFailures++;
    this.metrics.writeFailures.inc();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
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
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
