import { seedMeters, seedReadings } from '../src/database/seed';
import { runTool, withDatabase } from './db-tool';

runTool(async () => {
  const what = process.argv[2];
  if (what !== 'meters' && what !== 'data') throw new Error('usage: seed.ts meters|data');
  await withDatabase(async (dataSource) => {
    if (what === 'meters') {
      console.log(`seed meters 1000..1149 at 127.0.0.1 (port = id): ${await seedMeters(dataSource)} added`);
    } else {
      console.log(`seed readings for meter 1000: ${await seedReadings(dataSource)} added`);
    }
  });
});
