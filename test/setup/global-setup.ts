import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort, startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { TEST_POSTGRES_KEY, type TestPostgres, checkAdminConnection, redactUrl } from './test-database';

/**
 * Runs once per Jest run, in Jest's main process, before any worker starts: the admin URL set in process.env here
 * is inherited by every worker, and the handle kept on globalThis is what global-teardown stops.
 */
export default async function globalSetup(): Promise<void> {
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    const version = await checkAdminConnection(external);
    process.env.TEST_PG_ADMIN_URL = external;
    console.log(`\n[test-db] using TEST_DATABASE_URL ${redactUrl(external)} (${version})`);
    return;
  }

  // The temporary directory itself is the data directory: mkdtemp makes it 0700 and root-owned, so the postgres
  // system user (PostgreSQL refuses root) could not enter anything nested inside it.
  const dataDir = await mkdtemp(join(tmpdir(), 'em-test-pg-'));
  const startedAt = Date.now();
  try {
    const port = await findFreePort();
    const handle = await startEmbeddedPostgres({ dataDir, port, database: 'postgres' });
    const state: TestPostgres = { handle, dataDir };
    (globalThis as Record<symbol, unknown>)[TEST_POSTGRES_KEY] = state;
    process.env.TEST_PG_ADMIN_URL = handle.adminUrl;
    const took = Date.now() - startedAt;
    console.log(`\n[test-db] embedded PostgreSQL on 127.0.0.1:${port}, data in ${dataDir} (started in ${took} ms)`);
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}
