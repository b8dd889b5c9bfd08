import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';

/** A reading as the poller took it: exact decimal strings and the service's clock at the answer. */
export interface NewReading {
  meterId: string;
  takenAt: Date;
  currentA: string;
  energyKwh: string;
}

export interface CounterRow {
  takenAt: Date;
  energyKwh: string;
}

export interface CurrentAggregate {
  readings: number;
  firstReadingAt: Date | null;
  lastReadingAt: Date | null;
  avg: string | null;
  min: string | null;
  max: string | null;
}

@Injectable()
export class ReadingsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Writes a batch in one statement (arrays through unnest: no parameter limit). The meters written for are
   * locked FOR KEY SHARE: a meter being deleted is waited for and then skipped, so no reading outlives its meter
   * (there is no foreign key: it cost a look-up per row). A reading already stored is not stored twice.
   * Returns how many rows were written.
   */
  async insertBatch(readings: readonly NewReading[], manager: EntityManager = this.dataSource.manager): Promise<number> {
    if (readings.length === 0) return 0;
    return this.affectedRows(
      manager,
      `INSERT INTO readings (meter_id, taken_at, current_a, energy_kwh)
       SELECT r.meter_id, r.taken_at, r.current_a, r.energy_kwh
         FROM unnest($1::varchar[], $2::timestamptz[], $3::numeric[], $4::numeric[])
              AS r(meter_id, taken_at, current_a, energy_kwh)
         JOIN meters m ON m.meter_id = r.meter_id
          FOR KEY SHARE OF m
       ON CONFLICT DO NOTHING`,
      [
        readings.map((r) => r.meterId),
        readings.map((r) => r.takenAt.toISOString()),
        readings.map((r) => r.currentA),
        readings.map((r) => r.energyKwh),
      ],
    );
  }

  private async affectedRows(manager: EntityManager, sql: string, params: unknown[]): Promise<number> {
    const runner = manager.queryRunner ?? this.dataSource.createQueryRunner();
    try {
      const result = await runner.query(sql, params, true);
      return result.affected ?? 0;
    } finally {
      if (!manager.queryRunner) await runner.release();
    }
  }

  async currentAggregate(meterId: string, start: Date, end: Date): Promise<CurrentAggregate> {
    const [row]: {
      readings: string;
      first_at: Date | null;
      last_at: Date | null;
      avg: string | null;
      min: string | null;
      max: string | null;
    }[] = await this.dataSource.query(
      `SELECT count(*) AS readings, min(taken_at) AS first_at, max(taken_at) AS last_at,
              avg(current_a) AS avg, min(current_a) AS min, max(current_a) AS max
         FROM readings
        WHERE meter_id = $1 AND taken_at >= $2 AND taken_at < $3`,
      [meterId, start.toISOString(), end.toISOString()],
    );
    return {
      readings: Number(row.readings),
      firstReadingAt: row.first_at,
      lastReadingAt: row.last_at,
      avg: row.avg,
      min: row.min,
      max: row.max,
    };
  }

  /**
   * The counter history the period's consumption needs, oldest first: three readings before the start (enough
   * to classify the baseline, see counter.ts), every reading in [start, end), and one after the end (it decides
   * whether the last reading in the period is a misread).
   */
  async counterWindow(meterId: string, start: Date, end: Date): Promise<CounterRow[]> {
    const rows: { taken_at: Date; energy_kwh: string }[] = await this.dataSource.query(
      `(SELECT taken_at, energy_kwh FROM readings WHERE meter_id = $1 AND taken_at < $2
         ORDER BY taken_at DESC LIMIT 3)
       UNION ALL
       (SELECT taken_at, energy_kwh FROM readings WHERE meter_id = $1 AND taken_at >= $2 AND taken_at < $3)
       UNION ALL
       (SELECT taken_at, energy_kwh FROM readings WHERE meter_id = $1 AND taken_at >= $3
         ORDER BY taken_at LIMIT 1)
       ORDER BY taken_at`,
      [meterId, start.toISOString(), end.toISOString()],
    );
    return rows.map((row) => ({ takenAt: row.taken_at, energyKwh: row.energy_kwh }));
  }

  async countForMeter(meterId: string): Promise<number> {
    const [row]: { count: string }[] = await this.dataSource.query(
      'SELECT count(*) AS count FROM readings WHERE meter_id = $1',
      [meterId],
    );
    return Number(row.count);
  }
}
