import { runTool, withDatabase } from './db-tool';

runTool(async () => {
  await withDatabase(async (dataSource) => {
    const [{ count }]: { count: string }[] = await dataSource.query('SELECT count(*) AS count FROM migrations');
    console.log(`migrations applied: ${count} (schema up to date)`);
  });
});
