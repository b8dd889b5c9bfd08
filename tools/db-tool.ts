import { DataSource } from 'typeorm';
import { loadConfig } from '../src/config/app-config';
import { openDatabaseServer } from '../src/database/database-server';
import { buildDataSourceOptions, runMigrations } from '../src/database/database.options';

/**
 * Runs `work` against the service's database (DATABASE_URL, or the embedded one: the running service's if it is
 * up, else started for the while), after applying pending migrations.
 */
export async function withDatabase<T>(work: (dataSource: DataSource) => Promise<T>): Promise<T> {
  const config = loadConfig(process.env);
  const server = await openDatabaseServer(config.database, { attach: true });
  const dataSource = new DataSource(buildDataSourceOptions(server.url));
  try {
    await dataSource.initialize();
    await runMigrations(dataSource);
    return await work(dataSource);
  } finally {
    if (dataSource.isInitialized) await dataSource.destroy();
    await server.close();
  }
}

export function runTool(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
}
