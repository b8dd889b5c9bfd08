import { randomBytes } from 'node:crypto';
import type { EmbeddedPostgresHandle } from '../../src/database/embedded-postgres';

/** What global-setup leaves for global-teardown (same process, so globalThis is shared). */
export interface TestPostgres {
  handle: EmbeddedPostgresHandle;
  dataDir: string;
}

export const TEST_POSTGRES_KEY = Symbol.for('electric-meter.test-postgres');

export interface TestDatabase {
  url: string;
  /** Disconnects every session and drops the database; safe to call twice. */
  drop(): Promise<void>;
}

interface PgClient {
  connect(): Promise<void>;
  query(text: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
  end(): Promise<void>;
  escapeIdentifier(name: string): string;
}

// `pg` ships no types of its own and @types/pg is not a dependency; this is the little of it used here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Client } = require('pg') as { Client: new (config: { connectionString: string }) => PgClient };

/** PostgreSQL truncates identifiers beyond 63 bytes; a truncated name could collide with another file's. */
const MAX_NAME_LENGTH = 63;
const PREFIX = 'em_test_';
const SUFFIX_LENGTH = 9; // '_' and 8 hex digits

/**
 * Creates an empty database for one test file on the server global-setup chose, named
 * em_test_<label>_<random> so parallel workers never share one and a stray name is recognisable.
 */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const adminUrl = process.env.TEST_PG_ADMIN_URL;
  if (!adminUrl) {
    throw new Error('TEST_PG_ADMIN_URL is not set: run the tests with test/setup/global-setup.ts as globalSetup');
  }
  const sanitized = label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, MAX_NAME_LENGTH - PREFIX.length - SUFFIX_LENGTH);
  const name = `${PREFIX}${sanitized || 'db'}_${randomBytes(4).toString('hex')}`;
  // Dropping is this module's other half: never let it near a database that is not a test's own.
  if (!name.includes('test')) throw new Error(`refusing to create test database "${name}": its name lacks "test"`);

  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => dropDatabase(adminUrl, name) };
}

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  if (!name.includes('test')) throw new Error(`refusing to drop "${name}": not a test database`);
  await withClient(adminUrl, async (client) => {
    // A pool the test forgot to close would otherwise make DROP fail with "is being accessed by other users".
    for (let attempt = 1; ; attempt++) {
      await client.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [name],
      );
      try {
        await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)}`);
        return;
      } catch (err) {
        // 55006: a pool reconnected between the two statements.
        if ((err as { code?: string }).code !== '55006' || attempt >= 5) throw err;
        await new Promise((wake) => setTimeout(wake, 100));
      }
    }
  });
}

/** Connects with the admin URL and returns the server version; fails with a clear message otherwise. */
export async function checkAdminConnection(adminUrl: string): Promise<string> {
  try {
    return await withClient(adminUrl, async (client) => {
      const { rows } = await client.query(
        `SELECT current_setting('server_version') AS version,
                (SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user) AS can_create`,
      );
      const row = rows[0] ?? {};
      if (row.can_create !== true) throw new Error('its role may not create databases (needs CREATEDB)');
      return `PostgreSQL ${String(row.version)}`;
    });
  } catch (err) {
    throw new Error(`TEST_DATABASE_URL ${redactUrl(adminUrl)} is not usable: ${(err as Error).message}`);
  }
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

async function withClient<T>(connectionString: string, work: (client: PgClient) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
