import { rm } from 'node:fs/promises';
import { TEST_POSTGRES_KEY, type TestPostgres } from './test-database';

/** Stops the embedded server global-setup started (nothing to do when TEST_DATABASE_URL named a server). */
export default async function globalTeardown(): Promise<void> {
  const slot = globalThis as Record<symbol, unknown>;
  const state = slot[TEST_POSTGRES_KEY] as TestPostgres | undefined;
  if (!state) return;
  delete slot[TEST_POSTGRES_KEY];
  try {
    await state.handle.stop();
  } finally {
    await rm(state.dataDir, { recursive: true, force: true });
  }
}
