/**
 * `npm run bench:api`: how many requests a second the built service answers, and how slowly the slowest ones,
 * for the three reads people make most: the first page of meters, one meter, and a month of statistics.
 *
 * The service runs as it runs in production: `node dist/src/main.js` (built by the npm script) in a child
 * process, on a database of its own (DATABASE_URL's server, or an embedded PostgreSQL in a temporary directory),
 * polling off so that only the API works. The dataset is written with SQL (generate_series) after the service's
 * own start has migrated the schema: 10,000 meters, and for 50 of them a year of readings every 15 minutes
 * (1,752,000 rows), written in time order as polls write them, then VACUUM ANALYZE. autocannon (in this process)
 * drives each endpoint for a warm-up and then a measured run, picking the meter (and the month) at random per
 * request. Every endpoint's answer is checked once before it is measured; non-2xx answers are counted.
 *
 *   npm run bench:api [-- --duration 10 --warmup 3 --connections 10]
 */
import autocannon from 'autocannon';
import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { freePortFrom, openBenchDatabase } from './lib/database';
import { fixed, int, table } from './lib/format';

const REPO_ROOT = resolve(__dirname, '..');
const METERS = 10_000;
const METERS_WITH_HISTORY = 50;
const FIRST_PORT = 9000;
const YEAR = 2025;
const READINGS_PER_METER = 365 * 96;

interface Scenario {
  name: string;
  /** A path for the next request (random meter, random month). */
  path: () => string;
  /** Whether one answer looks right (checked once before measuring). */
  check: (body: unknown) => string | null;
}

const randomInt = (below: number) => Math.floor(Math.random() * below);
const meterId = (index: number) => String(FIRST_PORT + index);
const pad = (value: number) => String(value).padStart(2, '0');

/** A calendar month of YEAR as DD-MM-YYYY bounds (the end day is included whole). */
function month(index: number): { start: string; end: string; days: number } {
  const days = new Date(Date.UTC(YEAR, index + 1, 0)).getUTCDate();
  return { start: `01-${pad(index + 1)}-${YEAR}`, end: `${pad(days)}-${pad(index + 1)}-${YEAR}`, days };
}

const SCENARIOS: Scenario[] = [
  {
    name: 'list meters (first page, 100)',
    path: () => '/meters',
    check: (body) => {
      const page = body as { items?: unknown[]; total?: number };
      return page.items?.length === 100 && page.total === METERS ? null : `expected 100 of ${METERS} meters`;
    },
  },
  {
    name: 'get meter (random of 10,000)',
    path: () => `/meters/${meterId(randomInt(METERS))}`,
    check: (body) => (typeof (body as { meter_id?: unknown }).meter_id === 'string' ? null : 'no meter_id'),
  },
  {
    name: 'stats for a month (random meter of 50, random month)',
    path: () => {
      const { start, end } = month(randomInt(12));
      return `/meters/${meterId(randomInt(METERS_WITH_HISTORY))}/stats?start_date=${start}&end_date=${end}`;
    },
    check: (body) => {
      const readings = (body as { readings?: number }).readings;
      return readings !== undefined && readings >= 28 * 96 && readings <= 31 * 96 ? null : `readings ${readings}`;
    },
  },
];

async function seed(url: string): Promise<{ meters: number; readings: number; seconds: number; size: string }> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const started = performance.now();
    await client.query(
      `INSERT INTO meters (meter_id, name, address, port, health_state, last_attempt_at, last_success_at,
                           consecutive_failures, last_poll_duration_ms, last_reading_at, last_current_a, last_energy_kwh)
       SELECT ($1 + i)::text, 'Bench meter ' || i, '127.0.0.1', $1 + i, CASE WHEN i % 50 = 49 THEN 'down' ELSE 'up' END,
              now(), now(), 0, 12, now(), 10 + i % 7, 1000 + i
         FROM generate_series(0, $2 - 1) AS i`,
      [FIRST_PORT, METERS],
    );
    // Time-major, as polls write them: one row per meter per 15 minutes; counters grow, current follows a day. A
    // bulk load marks no hour dirty (the rollup trigger is off for it); the rollups are built after it, as a
    // running service keeps them (otherwise the first statistics of each meter would recompute a year of hours).
    await client.query('ALTER TABLE readings DISABLE TRIGGER readings_rollup_insert');
    await client.query(
      `INSERT INTO readings (meter_id, taken_at, current_a, energy_kwh)
       SELECT ($1 + m)::text,
              make_timestamptz($3, 1, 1, 0, 0, 0, 'UTC') + s * interval '15 minutes',
              round((12 + 8 * sin(s * pi() / 48) + m % 5)::numeric, 3),
              1000 * m + s * 0.6 + (s % 4) * 0.05
         FROM generate_series(0, $4 - 1) AS s, generate_series(0, $2 - 1) AS m`,
      [FIRST_PORT, METERS_WITH_HISTORY, YEAR, READINGS_PER_METER],
    );
    await client.query('ALTER TABLE readings ENABLE TRIGGER readings_rollup_insert');
    await client.query('SELECT readings_rollup_rebuild()');
    await client.query('VACUUM ANALYZE meters, readings, readings_hourly, readings_daily');
    const seconds = (performance.now() - started) / 1000;
    const [{ meters }] = (await client.query('SELECT count(*)::int AS meters FROM meters')).rows;
    const [{ readings }] = (await client.query('SELECT count(*)::int AS readings FROM readings')).rows;
    const [{ size }] = (await client.query('SELECT pg_size_pretty(pg_database_size(current_database())) AS size')).rows;
    return { meters, readings, seconds, size };
  } finally {
    await client.end();
  }
}

/** The built service in a child process, answering on `port`; its output goes to `logFile`. */
async function startService(port: number, databaseUrl: string, cwd: string, logFile: string): Promise<ChildProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), DATABASE_URL: databaseUrl, POLLING_ENABLED: 'false' };
  delete env.API_KEY;
  // cwd is a scratch directory: main.js would read a developer's .env from the working directory.
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/src/main.js')], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile);
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the service exited with code ${child.exitCode}; see ${logFile}`);
    const ok = await fetch(`http://127.0.0.1:${port}/health`).then((response) => response.ok, () => false);
    if (ok) return child;
    await new Promise((wake) => setTimeout(wake, 200));
  }
  child.kill('SIGTERM');
  throw new Error(`the service did not answer /health within 60 s; see ${logFile}`);
}

async function stopService(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

function run(base: string, scenario: Scenario, seconds: number, connections: number): Promise<autocannon.Result> {
  return autocannon({
    url: base,
    connections,
    duration: seconds,
    requests: [{ setupRequest: (request) => ({ ...request, path: scenario.path() }) }],
  });
}

const load = () => loadavg().map((value) => value.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string', default: '10' },
    },
  });
  const duration = Number(values.duration);
  const warmup = Number(values.warmup);
  const connections = Number(values.connections);
  console.log(`bench:api: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}, load ${load()}`);

  const scratch = await mkdtemp(join(tmpdir(), 'em-bench-api-'));
  const database = await openBenchDatabase(await freePortFrom(8434, 8999), (line) => console.log(line));
  const name = `em_bench_api_${process.pid}`;
  let service: ChildProcess | undefined;
  let finished = false;
  try {
    console.log(`database: ${database.description}, PostgreSQL ${await database.version()}`);
    const url = await database.create(name);
    const port = await freePortFrom(8766, 8866);
    const logFile = join(scratch, 'service.log');
    service = await startService(port, url, scratch, logFile);
    console.log(`service: node dist/src/main.js (pid ${service.pid}) on 127.0.0.1:${port}, POLLING_ENABLED=false`);

    const data = await seed(url);
    console.log(
      `dataset: ${int(data.meters)} meters; ${int(data.readings)} readings = ${METERS_WITH_HISTORY} meters x ` +
        `${int(READINGS_PER_METER)} (every 15 min through ${YEAR}); database ${data.size}; seeded in ${fixed(data.seconds, 1)} s`,
    );

    const base = `http://127.0.0.1:${port}`;
    const rows: string[][] = [['endpoint', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'requests', 'non-2xx', 'errors']];
    for (const scenario of SCENARIOS) {
      const response = await fetch(`${base}${scenario.path()}`);
      const problem = response.ok ? scenario.check(await response.json()) : `HTTP ${response.status}`;
      if (problem) throw new Error(`${scenario.name}: unexpected answer (${problem})`);
      await run(base, scenario, warmup, connections);
      const result = await run(base, scenario, duration, connections);
      rows.push([
        scenario.name,
        int(result.requests.average),
        fixed(result.latency.p50, 1),
        fixed(result.latency.p99, 1),
        fixed(result.latency.max, 1),
        int(result.requests.total),
        int(result.non2xx),
        int(result.errors),
      ]);
      console.log(`  ${scenario.name}: done (load ${load()})`);
    }
    console.log(
      `\n${connections} connections, ${warmup} s warm-up then ${duration} s measured per endpoint; autocannon in this process`,
    );
    console.log(table(rows));
    console.log(`load average (1, 5, 15 min) at the end: ${load()}`);
    finished = true;
  } finally {
    if (service) await stopService(service);
    await database.drop(name).catch((error: unknown) => console.error(`could not drop ${name}: ${String(error)}`));
    await database.close();
    // Kept when the run failed: the service's log is in it.
    if (finished) await rm(scratch, { recursive: true, force: true });
    else console.error(`service log kept in ${scratch}`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
