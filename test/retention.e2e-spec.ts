import { DataSource } from 'typeorm';
import { InitialSchema1764770000000 } from '../src/database/migrations/1764770000000-InitialSchema';
import { IngestTuning1764780000000 } from '../src/database/migrations/1764780000000-IngestTuning';
import { Rollups1764790000000 } from '../src/database/migrations/1764790000000-Rollups';
import { ReadingsPartitions } from '../src/readings/readings-partitions';
import { StatsService } from '../src/readings/stats.service';
import { createTestDatabase, TestDatabase } from './setup/test-database';
import { createTestApp, TestApp } from './support/test-app';

/**
 * Time partitions and retention (issue #4 item 7): an unpartitioned table with data is converted by the
 * PartitionReadings migration with nothing lost or changed, and READINGS_RETENTION_DAYS drops whole months while
 * the statistics of those months still answer from the rollups.
 */
const MINUTE = 60_000;
const METER = 'retained-1';

/** Jan to Apr 2023, every 20 minutes, with a replacement in February and a misread in March. */
function history(): [string, string, string][] {
  const rows: [string, string, string][] = [];
  let energy = 1000;
  for (let at = Date.UTC(2023, 0, 1); at < Date.UTC(2023, 3, 15); at += 20 * MINUTE) {
    energy += 0.125 + (at % 7) / 100;
    if (at === Date.UTC(2023, 1, 10, 12)) energy = 3;
    const misread = at === Date.UTC(2023, 2, 5, 6);
    rows.push([new Date(at).toISOString(), String((at / MINUTE) % 17), (misread ? energy - 50 : energy).toFixed(6)]);
  }
  return rows;
}

const PERIODS = [
  { startDate: '01-01-2023', endDate: '31-01-2023' },
  { startDate: '01-02-2023', endDate: '28-02-2023', bucket: 'day' },
  { startDate: '2023-03-04T10:10:00Z', endDate: '2023-03-06T00:00:00Z' },
  { startDate: '01-01-2023', endDate: '30-04-2023', bucket: 'month' },
];

describe('Readings partitioned by month, expired months dropped (issue #4 item 7)', () => {
  let database: TestDatabase;
  let t: TestApp;
  const before: unknown[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('retention');
    // The schema as it was before partitions, with a history in it and its rollups.
    const old = new DataSource({
      type: 'postgres',
      url: database.url,
      migrations: [InitialSchema1764770000000, IngestTuning1764780000000, Rollups1764790000000],
    });
    await old.initialize();
    try {
      await old.runMigrations();
      await old.query(`INSERT INTO meters (meter_id, address, port) VALUES ($1, '127.0.0.1', 31999)`, [METER]);
      const rows = history();
      await old.query(
        `INSERT INTO readings (meter_id, taken_at, current_a, energy_kwh)
         SELECT $1, t, c, e FROM unnest($2::timestamptz[], $3::numeric[], $4::numeric[]) AS r(t, c, e)`,
        [METER, rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])],
      );
      await old.query('SELECT readings_rollup_refresh($1, 0)', [METER]);
    } finally {
      await old.destroy();
    }
    // The app (which migrates on start) boots in the first test, after the old table's rows are counted.
  });
  afterAll(async () => {
    await t?.close();
    await database?.drop();
  });

  it('the migration converts the table with its data: same rows, monthly partitions, same statistics', async () => {
    const counted = async (ds: { query: DataSource['query'] }) =>
      Number((await ds.query('SELECT count(*) AS n FROM readings WHERE meter_id = $1', [METER]))[0].n);
    const old = new DataSource({ type: 'postgres', url: database.url });
    await old.initialize();
    const rowsBefore = await counted(old);
    const checksumBefore = (await old.query('SELECT md5(string_agg(r::text, \',\' ORDER BY taken_at)) AS s FROM readings r'))[0].s;
    await old.destroy();
    expect(rowsBefore).toBe(history().length);

    t = await createTestApp('retention', { READINGS_RETENTION_DAYS: '100000' }, { databaseUrl: database.url });
    expect(await counted(t.dataSource)).toBe(rowsBefore);
    expect((await t.dataSource.query('SELECT md5(string_agg(r::text, \',\' ORDER BY taken_at)) AS s FROM readings r'))[0].s).toBe(
      checksumBefore,
    );
    const partitions: { name: string }[] = await t.dataSource.query(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'readings'::regclass ORDER BY 1`,
    );
    expect(partitions.map((p) => p.name).slice(0, 5)).toEqual([
      'readings_default',
      'readings_p202301',
      'readings_p202302',
      'readings_p202303',
      'readings_p202304',
    ]);
    expect((await t.dataSource.query('SELECT count(*)::int AS n FROM ONLY readings_default'))[0].n).toBe(0);

    const stats = t.app.get(StatsService);
    for (const period of PERIODS) {
      const fromRollups = await stats.forPeriod(METER, period);
      expect(fromRollups).toEqual(await stats.forPeriod(METER, period, 'raw'));
      before.push(fromRollups);
    }
    // The history has what the figures should show: a replacement and a misread.
    expect(before[3]).toMatchObject({ readings: rowsBefore, resets: 1, misreads: 1 });
  });

  it('a reading outside every partition is stored in the default one; creating its month moves it there', async () => {
    await t.dataSource.query(
      `INSERT INTO meters (meter_id, address, port) VALUES ('stray-1', '127.0.0.1', 31998)`,
    );
    await t.dataSource.query(`INSERT INTO readings VALUES ('stray-1', '2031-07-04T00:00:00Z', 1, 1)`);
    expect((await t.dataSource.query('SELECT count(*)::int AS n FROM ONLY readings_default'))[0].n).toBe(1);
    await t.app.get(ReadingsPartitions).maintain(new Date('2031-06-15T00:00:00Z'));
    expect((await t.dataSource.query('SELECT count(*)::int AS n FROM ONLY readings_default'))[0].n).toBe(0);
    expect((await t.dataSource.query('SELECT count(*)::int AS n FROM ONLY readings_p203107'))[0].n).toBe(1);
  });

  it('retention drops whole expired months; their statistics still answer from the rollups', async () => {
    // 2023-05-01 + 60 days: January, February and March 2023 have ended more than 60 days before.
    const partitions = new ReadingsPartitions(t.dataSource, { get: () => ({ retentionDays: 60 }) } as never);
    const upkeep = await partitions.maintain(new Date('2023-06-01T00:00:00Z'));
    expect(upkeep.dropped).toEqual(['readings_p202301', 'readings_p202302', 'readings_p202303']);
    const [{ n }] = await t.dataSource.query(
      `SELECT count(*)::int AS n FROM readings WHERE meter_id = $1 AND taken_at < '2023-04-01'`,
      [METER],
    );
    expect(n).toBe(0);

    const stats = t.app.get(StatsService);
    // Date-only periods are whole UTC days and hours: answered from rollups exactly as before.
    expect(await stats.forPeriod(METER, PERIODS[0])).toEqual(before[0]);
    expect(await stats.forPeriod(METER, PERIODS[1])).toEqual(before[1]);
    expect(await stats.forPeriod(METER, PERIODS[3])).toEqual(before[3]);
    // An instant bound inside an expired month needs raw readings for its partial hour, which are gone: the
    // whole hours still count, the 10:10-11:00 part does not.
    const partial = await stats.forPeriod(METER, PERIODS[2]);
    expect(partial.readings).toBeLessThan((before[2] as { readings: number }).readings);
    expect(partial.readings).toBeGreaterThan(0);
  });
  it('after POLL_INTERVAL_SECONDS changed, expired months still answer from their rollups, and a rebuild keeps them', async () => {
    // The rows as a service with another interval computed them (a break test then got zeros for expired months,
    // and the rebuild README advised deleted them for good).
    for (const table of ['readings_hourly', 'readings_daily']) {
      await t.dataSource.query(`UPDATE ${table} SET max_gap_ms = max_gap_ms + 1 WHERE meter_id = $1`, [METER]);
    }
    const stats = t.app.get(StatsService);
    type Monthly = { buckets: unknown[] };
    const expiredMonths = (answer: unknown) => (answer as Monthly).buckets.slice(0, 3);
    expect(await stats.forPeriod(METER, PERIODS[0])).toEqual(before[0]);
    // January to April: the expired months as before. April's rows, whose readings are stored, are recomputed
    // with this threshold; its first hour then lacks the step from March's last reading (README: retention).
    const mixed = await stats.forPeriod(METER, PERIODS[3]);
    expect(expiredMonths(mixed)).toEqual(expiredMonths(before[3]));
    await t.dataSource.query('SELECT readings_rollup_rebuild()');
    expect(await stats.forPeriod(METER, PERIODS[0])).toEqual(before[0]);
    expect(await stats.forPeriod(METER, PERIODS[1])).toEqual(before[1]);
    expect(expiredMonths(await stats.forPeriod(METER, PERIODS[3]))).toEqual(expiredMonths(before[3]));
  });
  it('a late reading stored for an expired hour leaves that hour\'s rollup alone', async () => {
    const stats = t.app.get(StatsService);
    const answer = await stats.forPeriod(METER, PERIODS[0]);
    // January 2023 was dropped: the reading lands in the default partition and marks its hour dirty.
    await t.dataSource.query(
      `INSERT INTO readings (meter_id, taken_at, current_a, energy_kwh) VALUES ($1, '2023-01-15T10:30:02Z', 1, 0.5)`,
      [METER],
    );
    expect(await stats.forPeriod(METER, PERIODS[0])).toEqual(answer);
    const [{ n }] = await t.dataSource.query('SELECT count(*)::int AS n FROM rollup_dirty WHERE meter_id = $1', [METER]);
    expect(n).toBe(0);
  });
});
