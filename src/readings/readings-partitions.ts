import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';

/** Partition upkeep runs at boot and then this often. */
const MAINTAIN_EVERY_MS = 6 * 3_600_000;
/** Months created ahead of now, so the default partition only ever takes strays (clock skew, replays of old data). */
const MONTHS_AHEAD = 2;
const MS_PER_DAY = 86_400_000;

export interface PartitionUpkeep {
  created: number;
  dropped: string[];
}

/**
 * Keeps the monthly partitions of readings (the PartitionReadings migration): creates the months ahead and, with
 * READINGS_RETENTION_DAYS, drops the months that ended before the retention cut (DROP TABLE: cheap, no DELETE).
 * The rollups are left alone, so statistics of dropped months still answer, to whole UTC hours.
 */
@Injectable()
export class ReadingsPartitions implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ReadingsPartitions.name);
  private readonly retentionDays: number | null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(ConfigService) config: ConfigService<AppConfig, true>,
  ) {
    this.retentionDays = config.get('stats', { infer: true }).retentionDays;
  }

  async onModuleInit(): Promise<void> {
    await this.maintain();
    this.timer = setInterval(() => {
      if (!this.running) {
        this.running = this.maintain()
          .catch((error: unknown) => this.logger.warn(`partition upkeep failed: ${String(error)}`))
          .finally(() => (this.running = null));
      }
    }, MAINTAIN_EVERY_MS);
    this.timer.unref();
  }

  /** Creates the partitions from this month to MONTHS_AHEAD ahead, and drops the expired ones. */
  async maintain(now: Date = new Date()): Promise<PartitionUpkeep> {
    const ahead = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + MONTHS_AHEAD, 1));
    const [{ created }]: { created: number }[] = await this.dataSource.query(
      'SELECT readings_ensure_partitions($1, $2) AS created',
      [now.toISOString(), ahead.toISOString()],
    );
    let dropped: string[] = [];
    if (this.retentionDays !== null) {
      const cut = new Date(now.getTime() - this.retentionDays * MS_PER_DAY);
      [{ dropped }] = await this.dataSource.query('SELECT readings_drop_partitions_before($1) AS dropped', [cut.toISOString()]);
      if (dropped.length > 0) {
        this.logger.log(`READINGS_RETENTION_DAYS=${this.retentionDays}: dropped ${dropped.join(', ')} (rollups kept)`);
      }
    }
    return { created, dropped };
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
