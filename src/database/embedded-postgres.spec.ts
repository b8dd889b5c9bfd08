import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import {
  EmbeddedPostgresError,
  findFreePort,
  startEmbeddedPostgres,
  type EmbeddedPostgresHandle,
} from './embedded-postgres';

const execFileAsync = promisify(execFile);

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Client } = require('pg') as {
  Client: new (config: { connectionString: string }) => {
    connect(): Promise<void>;
    query(text: string): Promise<{ rows: Array<Record<string, unknown>> }>;
    end(): Promise<void>;
  };
};

// initdb alone takes 1-3 s, more on a busy machine; Jest's default 5 s per test is too tight for it.
jest.setTimeout(30_000);

const runsAsRoot = process.getuid?.() === 0;

async function query(url: string, text: string): Promise<Array<Record<string, unknown>>> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

function readPid(dataDir: string): Promise<number> {
  return readFile(join(dataDir, 'postmaster.pid'), 'utf8').then((text) => Number.parseInt(text, 10));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((wake) => setTimeout(wake, 25));
  }
}

/** A pid that certainly belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((exited) => child.once('exit', exited));
  return child.pid ?? 999_999;
}

describe('startEmbeddedPostgres', () => {
  // One cluster for the whole file: initdb is the slow part (1-3 s, more on a busy machine).
  let dataDir: string;
  let handle: EmbeddedPostgresHandle | undefined;
  const strays: ChildProcess[] = [];
  const lines: string[] = [];
  const start = async (port?: number): Promise<EmbeddedPostgresHandle> => {
    lines.length = 0;
    handle = await startEmbeddedPostgres({
      dataDir,
      port: port ?? (await findFreePort()),
      log: (line) => lines.push(line),
    });
    return handle;
  };

  let parentDir: string;
  beforeAll(async () => {
    // mkdtemp makes the directory 0700; the postgres system user must be able to enter it to reach the data.
    parentDir = await mkdtemp(join(tmpdir(), 'em-pg-spec-'));
    await chmod(parentDir, 0o755);
    dataDir = join(parentDir, 'data');
    // What a run killed during initdb leaves behind: a staging directory that looks initialised.
    await mkdir(`${dataDir}.initdb`);
    await writeFile(join(`${dataDir}.initdb`, 'PG_VERSION'), '15\n');
  });

  afterEach(async () => {
    await handle?.stop();
    handle = undefined;
    for (const child of strays.splice(0)) child.kill('SIGKILL');
  });

  afterAll(async () => {
    await rm(parentDir, { recursive: true, force: true });
  });

  it('initialises once, keeps tables across restarts, and stops idempotently', async () => {
    const first = await start();
    // initdb ran beside the missing data directory, replacing the half-made staging one, and was moved into place.
    await expect(stat(`${dataDir}.initdb`)).rejects.toThrow(/ENOENT/);
    expect(first.url).toMatch(/^postgres:\/\/postgres:postgres@127\.0\.0\.1:\d+\/electric_meter$/);
    expect(first.adminUrl).toBe(first.url.replace(/electric_meter$/, 'postgres'));
    expect(lines.some((line) => line.includes('Success. You can now start the database server'))).toBe(true);
    await query(first.url, 'CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept VALUES (42)');
    const initialisedAt = (await stat(join(dataDir, 'PG_VERSION'))).mtimeMs;
    await first.stop();
    await first.stop();

    const second = await start();
    expect(lines.some((line) => line.includes('Success. You can now start the database server'))).toBe(false);
    expect((await stat(join(dataDir, 'PG_VERSION'))).mtimeMs).toBe(initialisedAt);
    await expect(query(second.url, 'SELECT id FROM kept')).resolves.toEqual([{ id: 42 }]);
    await expect(query(second.url, 'SHOW server_encoding')).resolves.toEqual([{ server_encoding: 'UTF8' }]);
  });

  it('rejects with the reason when the port is taken', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((listening) => blocker.listen(0, '127.0.0.1', listening));
    const address = blocker.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      const failure = startEmbeddedPostgres({ dataDir, port });
      await expect(failure).rejects.toBeInstanceOf(EmbeddedPostgresError);
      await expect(failure).rejects.toThrow(
        new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use[\\s\\S]*Address already in use`),
      );
    } finally {
      await new Promise((closed) => blocker.close(closed));
    }
  });

  it('removes a pid file whose process is gone', async () => {
    const pid = await deadPid();
    await writeFile(join(dataDir, 'postmaster.pid'), `${pid}\n${dataDir}\n`);
    const server = await start();
    expect(lines.some((line) => line.includes(`removing stale`))).toBe(true);
    await expect(query(server.url, 'SELECT 1 AS one')).resolves.toEqual([{ one: 1 }]);
    expect(await readPid(dataDir)).not.toBe(pid);
  });

  it('stops a server left running on the same data directory (its Node process was killed)', async () => {
    const port = await findFreePort();
    const binDir = join(dirname(require.resolve(`@embedded-postgres/${platform()}-${arch()}`)), '..', 'native', 'bin');
    const orphan = spawn(
      join(binDir, 'postgres'),
      ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      { stdio: 'ignore', detached: true, ...(runsAsRoot ? await postgresIds() : {}) },
    );
    strays.push(orphan);
    const pidFile = join(dataDir, 'postmaster.pid');
    await waitFor(async () => (await readFile(pidFile, 'utf8').catch(() => '')).includes('ready'), 'the orphan');

    const server = await start();
    expect(lines.some((line) => line.includes(`left running on ${dataDir} (PID ${orphan.pid})`))).toBe(true);
    await waitFor(() => orphan.exitCode !== null || orphan.signalCode !== null, 'the orphan to exit');
    await expect(query(server.url, 'SELECT id FROM kept')).resolves.toEqual([{ id: 42 }]);
  });

  it('refuses a pid file that names a live process other than PostgreSQL', async () => {
    const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
    strays.push(stranger);
    await writeFile(join(dataDir, 'postmaster.pid'), `${stranger.pid}\n${dataDir}\n`);
    try {
      await expect(startEmbeddedPostgres({ dataDir, port: await findFreePort() })).rejects.toThrow(
        new RegExp(`PID ${stranger.pid}, which is alive but is not a PostgreSQL server[\\s\\S]*sleep 30`),
      );
    } finally {
      await rm(join(dataDir, 'postmaster.pid'), { force: true });
    }
  });

  it('stops promptly after PostgreSQL died on its own, and can start again', async () => {
    await start();
    const pid = await readPid(dataDir);
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !isAlive(pid), 'the postmaster to die');
    // Without clearing the package's child handle its stop() would wait for an 'exit' that already happened.
    await expect(withTimeout(handle!.stop(), 2000)).resolves.toBeUndefined();

    const restarted = await start();
    await expect(query(restarted.url, 'SELECT id FROM kept')).resolves.toEqual([{ id: 42 }]);
  });

  it('leaves SIGTERM to an application that handles it, and otherwise stops the server and exits', async () => {
    const withHandler = await runChild(dataDir, true);
    expect(withHandler.output).toContain('query after SIGTERM: ok');
    expect(withHandler.code).toBe(0);

    const withoutHandler = await runChild(dataDir, false);
    expect(withoutHandler.code).toBe(143);
    await expect(readFile(join(dataDir, 'postmaster.pid'))).rejects.toThrow(/ENOENT/);
  });

  it('reports initdb refusing a directory that is not empty', async () => {
    const cluttered = await mkdtemp(join(tmpdir(), 'em-pg-cluttered-'));
    try {
      await writeFile(join(cluttered, 'notes.txt'), 'not a cluster');
      await expect(startEmbeddedPostgres({ dataDir: cluttered, port: await findFreePort() })).rejects.toThrow(
        /initdb failed for .*exists but is not empty/s,
      );
    } finally {
      await rm(cluttered, { recursive: true, force: true });
    }
  });

  (runsAsRoot ? it : it.skip)('says so when the postgres user cannot reach the data directory', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'em-pg-private-'));
    try {
      await chmod(parent, 0o700);
      await mkdir(join(parent, 'inner'));
      await expect(startEmbeddedPostgres({ dataDir: join(parent, 'inner', 'data'), port: 1 })).rejects.toThrow(
        /"postgres" system user .* cannot enter the directory/,
      );
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });
});

/**
 * Runs the module in a separate Node process (signals cannot be tried on Jest's own), sends it SIGTERM once the
 * server is up, and reports what it printed and how it exited.
 */
async function runChild(dataDir: string, handlesSigterm: boolean): Promise<{ code: number | null; output: string }> {
  const script = `
    const { startEmbeddedPostgres, findFreePort } = require(${JSON.stringify(require.resolve('./embedded-postgres'))});
    const { Client } = require('pg');
    (async () => {
      const server = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, port: await findFreePort() });
      if (${handlesSigterm}) {
        process.on('SIGTERM', async () => {
          await new Promise((wake) => setTimeout(wake, 300));
          const client = new Client({ connectionString: server.url });
          await client.connect();
          await client.query('SELECT 1');
          await client.end();
          console.log('query after SIGTERM: ok');
          await server.stop();
          process.exit(0);
        });
      }
      setInterval(() => undefined, 1000);
      console.log('READY');
    })().catch((err) => { console.error(err); process.exit(1); });
  `;
  const child = spawn(process.execPath, ['-r', 'ts-node/register', '-e', script], {
    cwd: join(__dirname, '..', '..'),
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  try {
    await waitFor(() => output.includes('READY') || child.exitCode !== null, 'the child to start', 15_000);
    child.kill('SIGTERM');
    return { code: await withTimeout(exited, 5000), output };
  } finally {
    child.kill('SIGKILL');
  }
}

/** The postgres account's ids (the orphan must run as it, as the embedded server does under root). */
async function postgresIds(): Promise<{ uid: number; gid: number }> {
  // execFile resolves once stdout is closed: waiting for 'exit' alone raced the output and gave NaN (a CI failure).
  const [uid, gid] = await Promise.all(
    ['-u', '-g'].map(async (flag) => Number.parseInt((await execFileAsync('id', [flag, 'postgres'])).stdout, 10)),
  );
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error(`no ids for the postgres account: ${uid}, ${gid}`);
  return { uid: uid!, gid: gid! };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
