import { DataSource } from 'typeorm';
import { buildDataSourceOptions } from './src/database/database.options';

/**
 * The TypeORM CLI's data source (`npm run migration:run`). It needs a server: DATABASE_URL, or the embedded one
 * the service started under ./data (its URL is printed at start).
 */
const url = process.env.DATABASE_URL;
if (!url) {
  throw new Error('DATABASE_URL is not set: the migration CLI needs a PostgreSQL server to talk to');
}
export default new DataSource(buildDataSourceOptions(url));
