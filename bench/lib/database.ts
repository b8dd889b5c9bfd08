/**
 * The PostgreSQL the benchmark writes to: DATABASE_URL's server when set, else an embedded server in a temporary
 * directory. Either way every network size gets a fresh database of its own, dropped afterwards.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';

export interface BenchDatabase {
  description: string;
  /** Embedded only: the data directory (its processes are found by it, to measure their CPU). */
  dataDir: string | null;
  create(name: string): Promise<string>;
  /** The URL of a database that already exists (a kept one). */
  url(name: string): string;
  drop(name: string): Promise<void>;
  version(): Promise<string>;
  close(): Promise<void>;
}

/** True when nothing listens on 127.0.0.1:port right now. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** The first free port from `preferred` up to `last`. */
export async function freePortFrom(preferred: number, last: number): Promise<number> {
  for (let port = preferred; port <= last; port++) if (await portIsFree(port)) return port;
  throw new Error(`no free port in ${preferred}-${last}`);
}

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

async function onServer<T>(adminUrl: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function server(adminUrl: string, description: string, dataDir: string | null, close: () => Promise<void>): BenchDatabase {
  return {
    description,
    dataDir,
    create: async (name) => {
      await onServer(adminUrl, async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)}`);
        await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
      });
      return withDatabase(adminUrl, name);
    },
    url: (name) => withDatabase(adminUrl, name),
    drop: async (name) => {
      await onServer(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`));
    },
    version: () => onServer(adminUrl, async (client) => String((await client.query('SHOW server_version')).rows[0].server_version)),
    close,
  };
}

export async function openBenchDatabase(port: number, log: (line: string) => void): Promise<BenchDatabase> {
  const external = process.env.DATABASE_URL;
  if (external) {
    const host = new URL(external).host;
    return server(external, `DATABASE_URL server (${host})`, null, async () => undefined);
  }
  // mkdtemp makes a 0700 root-owned directory: it is the data directory itself (the postgres system user must
  // be able to enter it; the embedded package hands it over), not a parent of it.
  const dataDir = await mkdtemp(join(tmpdir(), 'em-bench-pg-'));
  try {
    const handle = await startEmbeddedPostgres({
      dataDir,
      port,
      database: 'postgres',
      log: (line) => {
        if (/FATAL|PANIC/.test(line)) log(`postgres: ${line.trim()}`);
      },
    });
    return server(handle.adminUrl, `embedded PostgreSQL on 127.0.0.1:${port} (data in ${dataDir})`, dataDir, async () => {
      await handle.stop();
      await rm(dataDir, { recursive: true, force: true });
    });
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}
