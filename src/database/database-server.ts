import { Logger } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { AppConfig } from '../config/app-config';
import { startEmbeddedPostgres } from './embedded-postgres';

export interface DatabaseServer {
  url: string;
  embedded: boolean;
  close(): Promise<void>;
}

const EMBEDDED_DATABASE = 'electric_meter';

/**
 * DATABASE_URL when set; otherwise a real PostgreSQL of our own under EMBEDDED_PG_DIR, kept across restarts.
 * `attach` (for the seed and migration tools) first tries the embedded server a running service already started.
 */
export async function openDatabaseServer(
  config: AppConfig['database'],
  { attach = false }: { attach?: boolean } = {},
): Promise<DatabaseServer> {
  if (config.url) return { url: config.url, embedded: false, close: async () => undefined };
  if (attach) {
    // A running service's server says its port in postmaster.pid (4th line), whatever EMBEDDED_PG_PORT says here.
    const port = (await runningPort(resolve(config.embeddedDir))) ?? config.embeddedPort;
    const url = `postgres://postgres:postgres@127.0.0.1:${port}/${EMBEDDED_DATABASE}`;
    if (await answers(url)) return { url, embedded: true, close: async () => undefined };
  }
  const logger = new Logger('EmbeddedPostgres');
  const dataDir = resolve(config.embeddedDir);
  const handle = await startEmbeddedPostgres({
    dataDir,
    port: config.embeddedPort,
    database: EMBEDDED_DATABASE,
    log: (line) => {
      if (/FATAL|PANIC|ERROR/.test(line)) logger.warn(line.trim());
    },
  });
  logger.log(`embedded PostgreSQL on 127.0.0.1:${config.embeddedPort}, data in ${dataDir}`);
  return { url: handle.url, embedded: true, close: () => handle.stop() };
}

async function answers(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function runningPort(dataDir: string): Promise<number | null> {
  try {
    const port = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[3]);
    return Number.isInteger(port) && port > 0 ? port : null;
  } catch {
    return null;
  }
}
