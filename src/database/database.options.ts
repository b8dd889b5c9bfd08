import { DataSource, DataSourceOptions } from 'typeorm';
import { Meter } from '../meters/meter.entity';
import { TypeOrmLogger } from '../logging/typeorm-logger';
import { Reading } from '../readings/reading.entity';
import { InitialSchema1764770000000 } from './migrations/1764770000000-InitialSchema';
import { IngestTuning1764780000000 } from './migrations/1764780000000-IngestTuning';
import { Rollups1764790000000 } from './migrations/1764790000000-Rollups';
import { PartitionReadings1764800000000 } from './migrations/1764800000000-PartitionReadings';

/** The one TypeORM options object, shared by the app, the migration CLI (ormconfig.ts) and the tests. */
export function buildDataSourceOptions(url: string): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: [Meter, Reading],
    migrations: [InitialSchema1764770000000, IngestTuning1764780000000, Rollups1764790000000, PartitionReadings1764800000000],
    migrationsTableName: 'migrations',
    synchronize: false,
    // Failed queries are not logged here: expected ones (a taken id) become 409s, unexpected ones reach the filter.
    logging: ['warn', 'migration'],
    logger: new TypeOrmLogger(),
    extra: {
      max: 10,
      connectionTimeoutMillis: 5000,
      application_name: 'electric-meter',
      // A network that silently drops packets must not hang a request or the writer: the server gives up on a
      // statement after 30 s, the client a little later if the server cannot even say so.
      statement_timeout: 30_000,
      query_timeout: 35_000,
    },
  };
}

/** Any number of instances may start at once: one advisory lock makes their migration runs take turns. */
const MIGRATION_LOCK_KEY = 7_240_151_001;

export async function runMigrations(dataSource: DataSource): Promise<void> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await dataSource.runMigrations({ transaction: 'each' });
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await runner.release();
  }
}
