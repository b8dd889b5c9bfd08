import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Client } from 'pg';
import { freePorts } from './support/ports';
import { createTestDatabase, TestDatabase } from './setup/test-database';

/**
 * The real process, as an operator starts it (SPEC 8): configuration from the environment, migrations applied by
 * the start itself, the embedded PostgreSQL when DATABASE_URL is unset, SIGTERM answered with exit code 0.
 */

const PROJECT_DIR = resolve(__dirname, '..');
/** A start with ts-node takes ~3-8 s here (plus initdb on an empty data directory). */
const START_TIMEOUT_MS = 45_000;
/** main.ts allows SHUTDOWN_GRACE_MS (10 s) + 15 s; an idle service with polling off must be far quicker. */
const STOP_TIMEOUT_MS = 15_000;
/** Every migration the service ships, in order. */
const MIGRATION_NAMES = [
  'InitialSchema1764770000000',
  'IngestTuning1764780000000',
  'Rollups1764790000000',
  'PartitionReadings1764800000000',
];

/** Variables of this service that must come only from the test, never from the shell that runs Jest. */
const SERVICE_VARIABLES = /^(DATABASE_URL|PORT|POLL_.*|POLLING_ENABLED|METER_.*|STATS_TIMEZONE|READINGS_RETENTION_DAYS|EMBEDDED_PG_.*|SHUTDOWN_GRACE_MS|HTTP_BODY_LIMIT_BYTES|LOG_LEVEL|TEST_.*)$/;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Run {
  child: ChildProcess;
  exited: Promise<Exit>;
  output(): string;
  stderr(): string;
}

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];
const databases: TestDatabase[] = [];

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !SERVICE_VARIABLES.test(name)));
  return { ...base, POLLING_ENABLED: 'false', ...env };
}

function launch(command: string, args: string[], env: Record<string, string>): Run {
  const child = spawn(command, args, {
    cwd: PROJECT_DIR,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: afterAll can stop it together with the PostgreSQL it may have started.
    detached: true,
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<Exit>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit({ code, signal }));
  });
  return {
    child,
    exited,
    output: () => `--- stdout ---\n${stdout.slice(-3000)}\n--- stderr ---\n${stderr.slice(-3000)}`,
    stderr: () => stderr,
  };
}

function startService(env: Record<string, string>): Run {
  return launch(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], env);
}

function timeout<T>(ms: number, what: string): Promise<T> {
  return new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms).unref());
}

/** The exit of `run`, or a failure naming what was awaited after `ms`. */
function exitWithin(run: Run, ms: number, what: string): Promise<Exit> {
  return Promise.race([run.exited, timeout<Exit>(ms, `${what}\n${run.output()}`)]);
}

/** Waits until GET /health answers 200; fails early when the process exits first. */
async function waitUntilHealthy(run: Run, port: number): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let exit: Exit | undefined;
  void run.exited.then((value) => (exit = value));
  for (;;) {
    if (exit) throw new Error(`the service exited (${JSON.stringify(exit)}) before it was healthy\n${run.output()}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no healthy answer within ${START_TIMEOUT_MS} ms\n${run.output()}`);
    await new Promise((wake) => setTimeout(wake, 150));
  }
}

async function stopWithSigterm(run: Run): Promise<Exit> {
  run.child.kill('SIGTERM');
  return exitWithin(run, STOP_TIMEOUT_MS, 'exit after SIGTERM');
}

function http(port: number, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
}

/** PostgreSQL processes (postmaster or backend) whose working directory is `dataDir`. */
async function postgresProcessesIn(dataDir: string): Promise<number[]> {
  const dir = await realpath(dataDir);
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const [exe, cwd] = await Promise.all([readlink(`/proc/${name}/exe`), realpath(`/proc/${name}/cwd`)]);
      if (basename(exe).startsWith('postgres') && cwd === dir) found.push(Number(name));
    } catch {
      // gone, a zombie, or not ours to read
    }
  }
  return found;
}

async function waitForNoPostgresIn(dataDir: string, ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = await postgresProcessesIn(dataDir);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((wake) => setTimeout(wake, 100));
  }
}

async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

async function newDatabase(label: string): Promise<TestDatabase> {
  const database = await createTestDatabase(label);
  databases.push(database);
  return database;
}

async function query<T extends Record<string, unknown>>(url: string, text: string): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

async function tablesOf(url: string): Promise<string[]> {
  const rows = await query<{ table_name: string }>(
    url,
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
  );
  return rows.map((row) => row.table_name);
}

/** A pid that certainly belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const pid = child.pid!;
  await new Promise((done) => child.once('exit', done));
  return pid;
}

afterAll(async () => {
  // Whatever happened above: nothing this file started may outlive it.
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (const dir of tempDirs) {
    if (!existsSync(dir)) continue;
    for (const pid of await postgresProcessesIn(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  await Promise.all(databases.map((database) => database.drop().catch(() => undefined)));
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
}, 30_000);

describe('Starting and stopping the service process (SPEC 8)', () => {
  describe('a bad setting stops the start', () => {
    it('exits non-zero within seconds, names the variable, starts nothing', async () => {
      const [port] = await freePorts(1);
      const scratch = await makeTempDir('em-boot-bad-');
      const embeddedDir = join(scratch, 'data');
      const run = startService({ PORT: String(port), POLL_INTERVAL_SECONDS: 'abc', EMBEDDED_PG_DIR: embeddedDir });
      const exit = await exitWithin(run, 20_000, 'exit on a bad setting');
      expect(exit.code).not.toBe(0);
      expect(exit.code).not.toBeNull();
      expect(run.stderr()).toContain('POLL_INTERVAL_SECONDS');
      expect(run.stderr()).toContain('"abc"');
      // Validated before anything is started: no embedded PostgreSQL, no listener.
      expect(existsSync(embeddedDir)).toBe(false);
      await expect(http(port, 'GET', '/health')).rejects.toThrow();
    }, 30_000);

    it('names every bad variable at once and never prints the database password', async () => {
      const [port] = await freePorts(1);
      const scratch = await makeTempDir('em-boot-bad-');
      const run = startService({
        PORT: String(port),
        EMBEDDED_PG_DIR: join(scratch, 'data'),
        STATS_TIMEZONE: 'Mars/Base',
        METER_ALLOWED_NETWORKS: '10.0.0.0/33',
        DATABASE_URL: 'mysql://admin:Sup3rS3cretPw@db.internal/meters',
      });
      const exit = await exitWithin(run, 20_000, 'exit on bad settings');
      expect(exit.code).toBe(1);
      for (const variable of ['STATS_TIMEZONE', 'METER_ALLOWED_NETWORKS', 'DATABASE_URL']) {
        expect(run.stderr()).toContain(variable);
      }
      expect(run.output()).not.toContain('Sup3rS3cretPw');
    }, 30_000);
  });

  describe('with DATABASE_URL', () => {
    it('applies the migrations itself, answers /health, and exits 0 on SIGTERM', async () => {
      const database = await newDatabase('boot_url');
      expect(await tablesOf(database.url)).toEqual([]);
      const [port] = await freePorts(1);
      const scratch = await makeTempDir('em-boot-url-');
      const run = startService({ PORT: String(port), DATABASE_URL: database.url, EMBEDDED_PG_DIR: join(scratch, 'data') });
      await waitUntilHealthy(run, port);

      const migrations = await query<{ name: string }>(database.url, 'SELECT name FROM migrations');
      expect(migrations.map((row) => row.name)).toEqual(MIGRATION_NAMES);
      expect(await tablesOf(database.url)).toEqual(expect.arrayContaining(['meters', 'migrations', 'readings']));
      const health = await http(port, 'GET', '/health');
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({
        status: 'ok',
        details: { database: { status: 'up' }, scheduler: { status: 'up' }, buffer: { status: 'up' } },
      });
      expect(existsSync(join(scratch, 'data'))).toBe(false);

      const stoppedAt = Date.now();
      const exit = await stopWithSigterm(run);
      expect({ exit, output: exit.code === 0 ? '' : run.output() }).toEqual({ exit: { code: 0, signal: null }, output: '' });
      expect(Date.now() - stoppedAt).toBeLessThan(STOP_TIMEOUT_MS);
      await expect(http(port, 'GET', '/health')).rejects.toThrow();
    }, 60_000);
  });

  describe('with the embedded PostgreSQL (no DATABASE_URL)', () => {
    let dataDir: string;
    let pgPort: number;
    const meter = { meter_id: 'boot-meter-1', address: '127.0.0.1', port: 4100, name: 'kept across restarts' };

    beforeAll(async () => {
      // The temporary directory itself is the data directory: PostgreSQL runs as the `postgres` user, which must
      // be able to enter its parent (/tmp), not a root-only directory around it.
      dataDir = await makeTempDir('em-boot-pg-');
    });

    // A fresh port for every start: a port held free since beforeAll may be taken by then on a busy machine.
    const start = async (): Promise<{ run: Run; port: number }> => {
      [pgPort] = await freePorts(1);
      const [port] = await freePorts(1);
      const run = startService({ PORT: String(port), EMBEDDED_PG_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort) });
      await waitUntilHealthy(run, port);
      return { run, port };
    };

    const stopCleanly = async (run: Run): Promise<void> => {
      const exit = await stopWithSigterm(run);
      expect({ exit, output: exit.code === 0 ? '' : run.output() }).toEqual({ exit: { code: 0, signal: null }, output: '' });
      expect(await waitForNoPostgresIn(dataDir, 5000)).toEqual([]);
      expect(existsSync(join(dataDir, 'postmaster.pid'))).toBe(false);
    };

    it('initialises an empty data directory, serves the API, and leaves no PostgreSQL behind on SIGTERM', async () => {
      const { run, port } = await start();
      expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);
      expect(await postgresProcessesIn(dataDir)).not.toEqual([]);

      const created = await http(port, 'POST', '/meters', meter);
      expect(created.status).toBe(201);
      expect(await created.json()).toMatchObject(meter);

      await stopCleanly(run);
    }, 60_000);

    it('keeps the data across a restart on the same directory', async () => {
      const { run, port } = await start();
      const found = await http(port, 'GET', `/meters/${meter.meter_id}`);
      expect(found.status).toBe(200);
      expect(await found.json()).toMatchObject(meter);
      await stopCleanly(run);
    }, 60_000);

    it('starts although a stale postmaster.pid names a dead process', async () => {
      const pid = await deadPid();
      await writeFile(
        join(dataDir, 'postmaster.pid'),
        `${pid}\n${dataDir}\n${Math.floor(Date.now() / 1000) - 60}\n${pgPort}\n\n127.0.0.1\n  5432001         0\nready   \n`,
      );
      const { run, port } = await start();
      const found = await http(port, 'GET', `/meters/${meter.meter_id}`);
      expect(found.status).toBe(200);
      await stopCleanly(run);
    }, 60_000);

    it('takes over from a run killed with SIGKILL whose PostgreSQL is still running', async () => {
      const first = await start();
      const postmasterPid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      // Only the Node process dies, as with `kill -9 <pid>`: its PostgreSQL child is left running without it.
      first.run.child.kill('SIGKILL');
      expect(await exitWithin(first.run, 5000, 'exit after SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
      expect(await postgresProcessesIn(dataDir)).toContain(postmasterPid);

      const { run, port } = await start();
      const found = await http(port, 'GET', `/meters/${meter.meter_id}`);
      expect(found.status).toBe(200);
      await stopCleanly(run);
    }, 90_000);
  });

  describe('npm run migration:run', () => {
    it('applies the schema to a fresh DATABASE_URL database and exits 0, and again changes nothing', async () => {
      const database = await newDatabase('boot_migrate');
      const scratch = await makeTempDir('em-boot-mig-');
      const env = { DATABASE_URL: database.url, EMBEDDED_PG_DIR: join(scratch, 'data') };

      const first = launch('npm', ['run', 'migration:run'], env);
      const firstExit = await exitWithin(first, 45_000, 'npm run migration:run');
      expect({ exit: firstExit, output: firstExit.code === 0 ? '' : first.output() }).toEqual({
        exit: { code: 0, signal: null },
        output: '',
      });
      expect(await tablesOf(database.url)).toEqual(expect.arrayContaining(['meters', 'migrations', 'readings']));
      const applied = await query<{ name: string }>(database.url, 'SELECT name FROM migrations');
      expect(applied.map((row) => row.name)).toEqual(MIGRATION_NAMES);
      // The schema is usable as the service uses it.
      await query(database.url, "INSERT INTO meters (meter_id, address, port) VALUES ('mig-1', '127.0.0.1', 4200)");
      expect(existsSync(join(scratch, 'data'))).toBe(false);

      const second = launch('npm', ['run', 'migration:run'], env);
      const secondExit = await exitWithin(second, 45_000, 'npm run migration:run (again)');
      expect(secondExit).toEqual({ code: 0, signal: null });
      expect(await query(database.url, 'SELECT name FROM migrations')).toHaveLength(MIGRATION_NAMES.length);
      expect(await query(database.url, 'SELECT meter_id FROM meters')).toEqual([{ meter_id: 'mig-1' }]);
    }, 90_000);
  });
});
