import { DataSource } from 'typeorm';
import { buildDataSourceOptions } from './src/database/database.options';

/**
 * The TypeORM CLI's data source (`npm run typeorm -- ...`, `npm run migration:revert`). It needs DATABASE_URL: for
 * the embedded server of a running service, postgres://postgres:postgres@127.0.0.1:54329/electric_meter with the
 * default settings (README). `npm run migration:run` does not need it: it finds the embedded server itself.
 */
const url = process.env.DATABASE_URL;
if (!url) {
  throw new Error('DATABASE_URL is not set: the migration CLI needs a PostgreSQL server to talk to');
}
export default new DataSource(buildDataSourceOptions(url));
