import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { bootstrapLogger, createApp } from './bootstrap';
import { ConfigError, loadConfig } from './config/app-config';
import { openDatabaseServer } from './database/database-server';

async function main(): Promise<void> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const config = loadConfig(process.env);
  const database = await openDatabaseServer(config.database);
  let app: Awaited<ReturnType<typeof createApp>>;
  try {
    app = await createApp(config, database.url);
    await app.listen(config.app.port);
  } catch (error) {
    await database.close();
    throw error;
  }
  bootstrapLogger.log(`Electric Meter listening on http://localhost:${config.app.port} (Swagger UI at /docs)`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    bootstrapLogger.log(`${signal}: stopping (no new polls, flushing readings)`);
    // A hung shutdown must not outlive its deadline: DevOps wait for the process to go.
    const deadline = setTimeout(() => {
      bootstrapLogger.error('shutdown deadline passed: exiting');
      process.exit(1);
    }, config.polling.shutdownGraceMs + 15_000);
    deadline.unref();
    try {
      await app.close();
      await database.close();
      process.exit(0);
    } catch (error) {
      bootstrapLogger.error(`shutdown failed: ${String(error)}`);
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(error.message);
  } else {
    bootstrapLogger.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  }
  process.exit(1);
});
