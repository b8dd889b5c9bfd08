/**
 * `npm run bench:stats`: how fast one meter's statistics answer on a large readings table (issue #4 item 6).
 *
 * Builds the data inside PostgreSQL with generate_series: METERS meters over the year 2023, the measured meter at
 * a 1-minute interval (525,600 readings), the others at OTHER_MINUTES (a full 1,000 x 525,600 = 525M rows would
 * take ~50 GB and hours on this machine). Rows go in month by month in time order, as a poller writes them (one
 * meter's readings spread over many pages). Then the rollups are built for every meter, and VACUUM ANALYZE runs.
 * Then StatsService (the service class the HTTP endpoint calls) answers, RUNS times each after a warm-up, for the
 * measured meter: one day, one month, the whole year, and the year in daily buckets; the raw path (no rollups)
 * is timed a few times for comparison. Prints p50/p95, the build time, table sizes and bytes per reading.
 *
 *   npm run bench:stats [-- --meters 1000 --other-minutes 60 --runs 50 --raw-runs 3 --keep --reuse]
 *
 * DATABASE_URL's server (database em_bench_stats) or an embedded one. --keep leaves the database for a later
 * --reuse run, which skips the build when the data is there.
 */
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { createApp } from '../src/bootstrap';
import { loadConfig } from '../src/config/app-config';
import { StatsRequest, StatsService, StatsSource } from '../src/readings/stats.service';
import { freePortFrom, openBenchDatabase } from './lib/database';
import { int, table } from './lib/format';
import { coreCount, loadAverage } from './lib/machine';

const DATABASE = 'em_bench_stats';
const MEASURED = 'bench-1';
const YEAR_START = '2023-01-01T00:00:00Z';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      meters: { type: 'string', default: process.env.STATS_BENCH_METERS ?? '1000' },
      'other-minutes': { type: 'string', default: process.env.STATS_BENCH_OTHER_MINUTES ?? '60' },
      runs: { type: 'string', default: '50' },
      'raw-runs': { type: 'string', default: '3' },
      keep: { type: 'boolean', default: false },
      reuse: { type: 'boolean', default: false },
    },
  });
  const meters = Number(values.meters);
  const otherMinutes = Number(values['other-minutes']);
  const runs = Number(values.runs);
  const rawRuns = Number(values['raw-runs']);
  if (![meters, otherMinutes, runs, rawRuns].every((n) => Number.isInteger(n) && n >= 1)) {
    throw new Error('--meters, --other-minutes, --runs and --raw-runs must be positive integers');
  }
  console.log(`bench:stats: ${int(meters)} meters, ${MEASURED} every minute and the others every ${otherMinutes} min over 2023; ` +
    `${coreCount()} cores; load ${loadAverage()}`);

  const database = await openBenchDatabase(await freePortFrom(8433, 8999), (line) => console.log(line));
  console.log(`database: ${database.description}, PostgreSQL ${await database.version()}`);
  let keep = values.keep;
  try {
    const url = values.reuse ? database.url(DATABASE) : await database.create(DATABASE);
    const config = loadConfig({ POLLING_ENABLED: 'false' });
    const app = await createApp(config, url);
    await app.init();
    try {
      const dataSource = app.get(DataSource);
      const expected = 525_600 + (meters - 1) * Math.ceil(525_600 / otherMinutes);
      const present = Number((await dataSource.query('SELECT count(*) AS n FROM readings'))[0].n);
      if (values.reuse && present === expected) {
        console.log(`reusing ${int(present)} readings in ${DATABASE}`);
      } else {
        if (present > 0) await dataSource.query('TRUNCATE readings, meters');
        await build(url, meters, otherMinutes);
      }
      await printSizes(dataSource);
      await measure(app.get(StatsService), runs, rawRuns);
    } finally {
      await app.close();
    }
  } catch (error) {
    keep = false;
    throw error;
  } finally {
    if (!keep) await database.drop(DATABASE);
    await database.close();
  }
  console.log(`load after: ${loadAverage()}`);
}

/** The build's statements run longer than the service's statement and read timeouts: a session of its own. */
async function build(url: string, meters: number, otherMinutes: number): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await buildWith({ query: async (sql, params) => (await client.query(sql, params)).rows }, meters, otherMinutes);
  } finally {
    await client.end();
  }
}

interface Session {
  query(sql: string, params?: unknown[]): Promise<any[]>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function buildWith(dataSource: Session, meters: number, otherMinutes: number): Promise<void> {
  const started = performance.now();
  await dataSource.query(
    `INSERT INTO meters (meter_id, address, port, enabled)
     SELECT 'bench-' || i, '127.0.0.1', 9000 + i, false FROM generate_series(1, $1) AS i`,
    [meters],
  );
  // The months of 2023 (the service creates only the months around now).
  await dataSource.query(`SELECT readings_ensure_partitions('2023-01-01T00:00:00Z', '2023-12-31T23:59:59Z')`);
  // A bulk load marks no hour dirty (that would be one row per meter and hour): the rollups are rebuilt after it.
  await dataSource.query('ALTER TABLE readings DISABLE TRIGGER readings_rollup_insert');
  try {
    for (let month = 0; month < 12; month++) {
      const t0 = performance.now();
      // Every meter's reading at each tick, in time order; the counter grows with time, the current varies.
      const [{ inserted }] = await dataSource.query(
        `WITH written AS (
         INSERT INTO readings (meter_id, taken_at, current_a, energy_kwh)
         SELECT m.meter_id, t,
                5 + ((extract(epoch FROM t)::bigint / 60 + m.n) % 23) * 0.25,
                round(1000 * m.n + (extract(epoch FROM t) - extract(epoch FROM $1::timestamptz)) / 60 * 0.012345, 6)
           FROM generate_series($2::timestamptz, $3::timestamptz - interval '1 minute', interval '1 minute') AS t
           JOIN (SELECT meter_id, substr(meter_id, 7)::int AS n FROM meters) m
             ON m.meter_id = $4 OR (extract(epoch FROM t - $1::timestamptz)::bigint / 60) % $5 = 0
          ORDER BY t, m.meter_id
         RETURNING 1)
         SELECT count(*) AS inserted FROM written`,
        [YEAR_START, monthStart(month), monthStart(month + 1), MEASURED, otherMinutes],
      );
      process.stdout.write(`  ${monthStart(month).slice(0, 7)}: ${int(Number(inserted))} readings in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    }
  } finally {
    await dataSource.query('ALTER TABLE readings ENABLE TRIGGER readings_rollup_insert');
  }
  const loaded = performance.now();
  // Rollups of every meter from its whole history, 100 meters a statement (bounded sort memory).
  for (let first = 1; first <= meters; first += 100) {
    await dataSource.query(
      `SELECT readings_rollup_rebuild(array(SELECT 'bench-' || i FROM generate_series($1::int, $2::int) AS i))`,
      [first, Math.min(meters, first + 99)],
    );
  }
  const rolled = performance.now();
  await dataSource.query('VACUUM ANALYZE readings');
  await dataSource.query('VACUUM ANALYZE readings_hourly');
  await dataSource.query('VACUUM ANALYZE readings_daily');
  const done = performance.now();
  console.log(
    `build: readings ${((loaded - started) / 1000).toFixed(1)} s, rollups ${((rolled - loaded) / 1000).toFixed(1)} s, ` +
      `vacuum analyze ${((done - rolled) / 1000).toFixed(1)} s, total ${((done - started) / 1000).toFixed(1)} s`,
  );
}

function monthStart(month: number): string {
  return new Date(Date.UTC(2023, month, 1)).toISOString();
}

async function printSizes(dataSource: DataSource): Promise<void> {
  const rows: string[][] = [['table', 'rows', 'total size (MiB)', 'bytes per row']];
  let readings = 0;
  let total = 0;
  for (const name of ['readings', 'readings_hourly', 'readings_daily']) {
    // A partitioned table has no storage of its own: its size is that of its partitions.
    const [{ n, bytes }]: { n: string; bytes: string }[] = await dataSource.query(
      `SELECT (SELECT count(*) FROM ${name}) AS n,
              pg_total_relation_size('${name}')
              + coalesce((SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits
                           WHERE inhparent = '${name}'::regclass), 0) AS bytes`,
    );
    if (name === 'readings') readings = Number(n);
    total += Number(bytes);
    rows.push([name, int(Number(n)), (Number(bytes) / 2 ** 20).toFixed(0), int(Number(bytes) / Math.max(1, Number(n)))]);
  }
  const measured = Number((await dataSource.query('SELECT count(*) AS n FROM readings WHERE meter_id = $1', [MEASURED]))[0].n);
  console.log(table(rows));
  console.log(
    `dataset: ${int(readings)} readings (${int(measured)} of ${MEASURED}); storage per reading incl. rollups: ` +
      `${int(total / Math.max(1, readings))} bytes`,
  );
}

interface Case {
  name: string;
  request: StatsRequest;
}

const CASES: Case[] = [
  { name: 'one day (15-06-2023)', request: { startDate: '15-06-2023', endDate: '15-06-2023' } },
  { name: 'one month (06-2023)', request: { startDate: '01-06-2023', endDate: '30-06-2023' } },
  { name: 'full year (2023)', request: { startDate: '01-01-2023', endDate: '31-12-2023' } },
  { name: 'year, daily buckets', request: { startDate: '01-01-2023', endDate: '31-12-2023', bucket: 'day' } },
  {
    name: 'month, instants (raw edges)',
    request: { startDate: '2023-06-01T00:00:30.5Z', endDate: '2023-06-30T23:59:30Z' },
  },
];

async function measure(stats: StatsService, runs: number, rawRuns: number): Promise<void> {
  const rows: string[][] = [['statistics of ' + MEASURED, 'readings', 'p50 ms', 'p95 ms', 'raw p50 ms', 'same answer']];
  for (const { name, request } of CASES) {
    const fromRollups = await time(stats, request, 'rollups', runs);
    const raw = await time(stats, request, 'raw', rawRuns);
    const same = JSON.stringify(fromRollups.answer) === JSON.stringify(raw.answer);
    rows.push([
      name,
      int(fromRollups.answer.readings),
      percentile(fromRollups.ms, 0.5).toFixed(1),
      percentile(fromRollups.ms, 0.95).toFixed(1),
      percentile(raw.ms, 0.5).toFixed(0),
      same ? 'yes' : 'NO',
    ]);
    if (!same) process.exitCode = 1;
  }
  console.log(`${runs} timed runs each after 3 warm-up runs (raw path: ${rawRuns}), through StatsService.forPeriod:`);
  console.log(table(rows));
}

async function time(stats: StatsService, request: StatsRequest, source: StatsSource, runs: number) {
  let answer = await stats.forPeriod(MEASURED, request, source);
  for (let i = 0; i < 2; i++) await stats.forPeriod(MEASURED, request, source);
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    answer = await stats.forPeriod(MEASURED, request, source);
    ms.push(performance.now() - started);
  }
  return { answer, ms };
}

/** Nearest-rank percentile. */
function percentile(values: readonly number[], share: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(share * sorted.length) - 1))];
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
