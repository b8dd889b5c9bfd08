import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { MeterSource, SAME_SOURCE } from '../common/meter-source';

/** A reading as the poller took it: exact decimal strings and the service's clock at the answer. */
export interface NewReading {
  meterId: string;
  takenAt: Date;
  currentA: string;
  energyKwh: string;
  /**
   * Where the reading was read (a poll or a live read): stored only while the meter is still registered there.
   * Absent for readings that come from no address (seeds, tests).
   */
  source?: MeterSource;
}


/** A reading of the statistics window: exact decimal strings, taken_at to the millisecond. */
export interface WindowRow {
  takenAt: Date;
  currentA: string;
  energyKwh: string;
}

export interface RollupInputs {
  windows: WindowRow[][];
  hourRows: RollupRow[];
  dayRows: RollupRow[];
}

/**
 * A time as whole epoch milliseconds, truncated as `pg` truncates a timestamptz into a Date: the rollup path reads
 * hundreds of rows of five times each, and building Dates from text was most of its time (measured: 11.8 ms for a
 * year of day rows).
 */
const EPOCH_MS = (column: string): string => `floor(extract(epoch FROM ${column}) * 1000)::bigint AS ${column}`;

/** A rollup row as `pg` returns it: numeric and bigint as strings, exact; times in epoch milliseconds. */
export interface RollupRow {
  bucket_start: string;
  readings: number;
  first_at: string;
  last_at: string;
  current_sum: string;
  current_min: string;
  current_max: string;
  current_last: string;
  current_held: string;
  consumption_kwh: string;
  resets: number;
  misreads: number;
  from_at: string;
  from_energy: string;
  to_at: string | null;
  to_energy: string | null;
  span_ms: string;
  covered_ms: string;
  gap_count: number;
  gap_from_ms: string[];
  gap_to_ms: string[];
  max_gap_ms: string;
}

/**
 * A reading of the history as text, as PostgreSQL prints it (no Date or number is built per row: the CSV export
 * goes through hundreds of thousands). `key` is its exact taken_at, 2023-08-12T00:00:31.123456Z: the position a
 * cursor holds; decimals are trimmed ('10.5', not '10.500000').
 */
export interface HistoryRow {
  key: string;
  currentA: string;
  energyKwh: string;
}

export interface HistoryPageRequest {
  /** [from, to): either may be open. */
  from: Date | null;
  to: Date | null;
  order: 'asc' | 'desc';
  /** Key of the last row already returned: the page continues strictly after it in `order`. */
  after: string | null;
  limit: number;
}

@Injectable()
export class ReadingsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Writes a batch in one statement (arrays through unnest: no parameter limit). The meters written for are
   * locked FOR KEY SHARE: a meter being deleted is waited for and then skipped, so no reading outlives its meter
   * (there is no foreign key: it cost a look-up per row). A reading already stored is not stored twice. A reading
   * read at an address the meter no longer has is not stored: the meter was moved, or deleted and registered
   * again elsewhere under the same id, while the request was in flight (a break test saw such a reading stored
   * under the new meter). Returns how many rows were written.
   */
  async insertBatch(readings: readonly NewReading[], manager: EntityManager = this.dataSource.manager): Promise<number> {
    if (readings.length === 0) return 0;
    return this.affectedRows(
      manager,
      `INSERT INTO readings (meter_id, taken_at, current_a, energy_kwh)
       SELECT r.meter_id, r.taken_at, r.current_a, r.energy_kwh
         FROM unnest($1::varchar[], $2::timestamptz[], $3::numeric[], $4::numeric[], $5::varchar[], $6::integer[])
              AS r(meter_id, taken_at, current_a, energy_kwh, address, port)
         JOIN meters m ON m.meter_id = r.meter_id AND ${SAME_SOURCE('r')}
          FOR KEY SHARE OF m
       ON CONFLICT DO NOTHING`,
      [
        readings.map((r) => r.meterId),
        readings.map((r) => r.takenAt.toISOString()),
        readings.map((r) => r.currentA),
        readings.map((r) => r.energyKwh),
        readings.map((r) => r.source?.address ?? null),
        readings.map((r) => r.source?.port ?? null),
      ],
    );
  }

  /**
   * Marks dirty the meter's hours from `since` on whose hour or day row was computed with another gap threshold, so
   * that the next refresh recomputes them (and their days) with this one.
   */
  async markStaleRollups(meterId: string, maxGapMs: number, since: Date): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO rollup_dirty (meter_id, hour)
       SELECT h.meter_id, h.bucket_start FROM readings_hourly h
        WHERE h.meter_id = $1 AND h.bucket_start + interval '1 hour' > $3
          AND (h.max_gap_ms <> $2 OR EXISTS (
                SELECT 1 FROM readings_daily d
                 WHERE d.meter_id = h.meter_id AND d.max_gap_ms <> $2
                   AND h.bucket_start >= d.bucket_start AND h.bucket_start < d.bucket_start + interval '1 day'))
       ON CONFLICT DO NOTHING`,
      [meterId, maxGapMs, since.toISOString()],
    );
  }

  /**
   * Before when the meter's readings are gone (null: none stored): where retention cut (rollup_settings.raw_since),
   * else its oldest stored reading. A late reading stored before the cut does not move it.
   */
  async rawReadingsSince(meterId: string): Promise<Date | null> {
    const [row]: { since: Date | null }[] = await this.dataSource.query(
      `SELECT coalesce((SELECT raw_since FROM rollup_settings),
                       (SELECT taken_at FROM readings WHERE meter_id = $1 ORDER BY taken_at LIMIT 1)) AS since`,
      [meterId],
    );
    return row?.since ?? null;
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

  /**
   * The readings a period's statistics need, oldest first, in one statement: three readings before the start
   * (enough to classify the baseline, see counter.ts), every reading in [start, end), and one after the end (it
   * decides whether the last reading in the period is a misread). The period's buckets are cut from it in
   * figures.ts, so a bucketed answer reads the table once too.
   */
  async counterWindow(meterId: string, start: Date, end: Date): Promise<WindowRow[]> {
    const rows: { taken_at: Date; current_a: string; energy_kwh: string }[] = await this.dataSource.query(
      `(SELECT taken_at, current_a, energy_kwh FROM readings WHERE meter_id = $1 AND taken_at < $2
         ORDER BY taken_at DESC LIMIT 3)
       UNION ALL
       (SELECT taken_at, current_a, energy_kwh FROM readings
         WHERE meter_id = $1 AND taken_at >= $2 AND taken_at < $3)
       UNION ALL
       (SELECT taken_at, current_a, energy_kwh FROM readings WHERE meter_id = $1 AND taken_at >= $3
         ORDER BY taken_at LIMIT 1)
       ORDER BY taken_at`,
      [meterId, start.toISOString(), end.toISOString()],
    );
    return rows.map((row) => ({ takenAt: row.taken_at, currentA: row.current_a, energyKwh: row.energy_kwh }));
  }

  /**
   * The raw readings of several short ranges at once, each with its counter window (3 readings before, the
   * range, 1 after; see counterWindow): the parts of a period that are not whole hours of the rollups.
   */
  async segmentWindows(
    meterId: string,
    ranges: readonly { start: number; end: number }[],
    manager: EntityManager = this.dataSource.manager,
  ): Promise<WindowRow[][]> {
    const windows: WindowRow[][] = ranges.map(() => []);
    if (ranges.length === 0) return windows;
    const rows: { i: string; taken_at: Date; current_a: string; energy_kwh: string }[] = await manager.query(
      `SELECT s.i, w.taken_at, w.current_a, w.energy_kwh
         FROM unnest($2::timestamptz[], $3::timestamptz[]) WITH ORDINALITY AS s(start_at, end_at, i)
        CROSS JOIN LATERAL (
              (SELECT taken_at, current_a, energy_kwh FROM readings
                WHERE meter_id = $1 AND taken_at < s.start_at ORDER BY taken_at DESC LIMIT 3)
              UNION ALL
              (SELECT taken_at, current_a, energy_kwh FROM readings
                WHERE meter_id = $1 AND taken_at >= s.start_at AND taken_at < s.end_at)
              UNION ALL
              (SELECT taken_at, current_a, energy_kwh FROM readings
                WHERE meter_id = $1 AND taken_at >= s.end_at ORDER BY taken_at LIMIT 1)
            ) w
        ORDER BY s.i, w.taken_at`,
      [meterId, ranges.map((r) => new Date(r.start).toISOString()), ranges.map((r) => new Date(r.end).toISOString())],
    );
    for (const row of rows) {
      windows[Number(row.i) - 1].push({ takenAt: row.taken_at, currentA: row.current_a, energyKwh: row.energy_kwh });
    }
    return windows;
  }

  /** The meter's rollup rows (readings_hourly or readings_daily) that start at the given instants. */
  async rollupRows(
    meterId: string,
    size: 'hour' | 'day',
    starts: readonly number[],
    manager: EntityManager = this.dataSource.manager,
  ): Promise<RollupRow[]> {
    if (starts.length === 0) return [];
    const table = size === 'hour' ? 'readings_hourly' : 'readings_daily';
    return manager.query(
      `SELECT ${EPOCH_MS('bucket_start')}, readings, ${EPOCH_MS('first_at')}, ${EPOCH_MS('last_at')},
              current_sum, current_min, current_max, current_last, current_held, consumption_kwh, resets, misreads,
              ${EPOCH_MS('from_at')}, from_energy, ${EPOCH_MS('to_at')}, to_energy,
              span_ms, covered_ms, gap_count, gap_from_ms, gap_to_ms, max_gap_ms
         FROM ${table}
        WHERE meter_id = $1 AND bucket_start = ANY($2::timestamptz[])
        ORDER BY bucket_start`,
      [meterId, starts.map((start) => new Date(start).toISOString())],
    );
  }

  /**
   * What statistics from rollups read, in one snapshot (REPEATABLE READ): the raw windows of the edge segments and
   * the hour and day rows. Null when the meter has dirty hours in that snapshot (refresh them first): the rows
   * would then lag behind the readings.
   */
  async rollupInputs(
    meterId: string,
    raw: readonly { start: number; end: number }[],
    hours: readonly number[],
    days: readonly number[],
  ): Promise<RollupInputs | null> {
    return this.dataSource.transaction('REPEATABLE READ', async (manager) => {
      const dirty: unknown[] = await manager.query('SELECT 1 FROM rollup_dirty WHERE meter_id = $1 LIMIT 1', [meterId]);
      if (dirty.length > 0) return null;
      return {
        windows: await this.segmentWindows(meterId, raw, manager),
        hourRows: await this.rollupRows(meterId, 'hour', hours, manager),
        dayRows: await this.rollupRows(meterId, 'day', days, manager),
      };
    });
  }

  /**
   * Recomputes the rollups of the meter's dirty hours, or with no meter those of up to `limit` dirty hours of any
   * (the Rollups migration's readings_rollup_refresh). Returns how many dirty hours were taken.
   */
  async refreshRollups(meterId: string | null, limit = 10_000): Promise<number> {
    const [row]: { taken: number }[] = await this.dataSource.query(
      'SELECT readings_rollup_refresh($1, $2) AS taken',
      [meterId, limit],
    );
    return row.taken;
  }

  /**
   * The gap threshold new rollup rows are computed with (the Rollups migration): the service's own, written at
   * boot. Rows computed with another one are not used for statistics.
   */
  async setRollupGapThreshold(maxGapMs: number): Promise<void> {
    await this.dataSource.query('UPDATE rollup_settings SET max_gap_ms = $1 WHERE max_gap_ms <> $1', [maxGapMs]);
  }

  /**
   * One page of a meter's readings by keyset on the primary key (meter_id, taken_at): each page is an index range
   * scan however deep it is, and the CSV export reads the whole history page after page with bounded memory.
   *
   * The page must be read in index order. With statistics that underestimate a meter's readings (measured here
   * right after a 525,600-row load, before autovacuum analyzed it: 271 rows expected) PostgreSQL prefers a bitmap
   * scan of every later reading and a top-N sort, so each page costs the rest of the history (1.2 s a page instead
   * of 30 ms; the year's export 39 s instead of 2.5 s). Sorting is therefore disabled for this statement alone.
   */
  async historyPage(meterId: string, request: HistoryPageRequest): Promise<HistoryRow[]> {
    const params: unknown[] = [meterId];
    const conditions = ['meter_id = $1'];
    const bind = (value: unknown): string => {
      params.push(value);
      return `$${params.length}`;
    };
    if (request.from) conditions.push(`taken_at >= ${bind(request.from.toISOString())}`);
    if (request.to) conditions.push(`taken_at < ${bind(request.to.toISOString())}`);
    if (request.after !== null) {
      conditions.push(`taken_at ${request.order === 'asc' ? '>' : '<'} ${bind(request.after)}::timestamptz`);
    }
    const sql = `SELECT to_char(taken_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS key,
                        trim_scale(current_a)::text AS current_a, trim_scale(energy_kwh)::text AS energy_kwh
                   FROM readings
                  WHERE ${conditions.join(' AND ')}
                  ORDER BY taken_at ${request.order === 'asc' ? 'ASC' : 'DESC'}
                  LIMIT ${bind(request.limit)}`;
    const rows: { key: string; current_a: string; energy_kwh: string }[] = await this.dataSource.transaction(
      async (manager) => {
        await manager.query('SET LOCAL enable_sort = off');
        return manager.query(sql, params);
      },
    );
    return rows.map((row) => ({ key: row.key, currentA: row.current_a, energyKwh: row.energy_kwh }));
  }

  async countForMeter(meterId: string): Promise<number> {
    const [row]: { count: string }[] = await this.dataSource.query(
      'SELECT count(*) AS count FROM readings WHERE meter_id = $1',
      [meterId],
    );
    return Number(row.count);
  }
}
