/**
 * `npm run bench:ingest`: how fast the service's write path stores poll results. The real application (its
 * ReadingWriter: per batch, one INSERT ... SELECT FROM unnest for the readings and one UPDATE ... FROM unnest for
 * the meters' health and latest reading, in one transaction) writes whole cycles of a 56,001-meter network into
 * PostgreSQL (DATABASE_URL's server, or an embedded one). Prints readings/s per batch size, then the time the
 * rollup refresh (RollupRefresher) takes to recompute the hours those writes marked dirty.
 *
 *   npm run bench:ingest [-- --meters 56001 --cycles 5 --batches 1000,5000,20000]
 */
import { parseArgs } from 'node:util';
import { DataSource } from 'typeorm';
import { createApp } from '../src/bootstrap';
import { loadConfig } from '../src/config/app-config';
import { PollResult } from '../src/polling/meter-client';
import { ReadingWriter } from '../src/polling/reading-writer';
import { RollupRefresher } from '../src/readings/rollup-refresher';
import { freePortFrom, openBenchDatabase } from './lib/database';
import { int, table } from './lib/format';
import { coreCount, loadAverage } from './lib/machine';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      meters: { type: 'string', default: '56001' },
      cycles: { type: 'string', default: '5' },
      batches: { type: 'string', default: '1000,5000,20000' },
    },
  });
  const meters = Number(values.meters);
  const cycles = Number(values.cycles);
  const batchSizes = values.batches.split(',').map(Number);
  console.log(`bench:ingest: ${int(meters)} meters x ${cycles} cycles per batch size; ${coreCount()} cores; load ${loadAverage()}`);

  const database = await openBenchDatabase(await freePortFrom(8433, 8999), (line) => console.log(line));
  console.log(`database: ${database.description}, PostgreSQL ${await database.version()}`);
  const rows: string[][] = [
    ['batch size', 'readings', 'seconds', 'readings/s', 'statements/batch', 'rollup refresh', 'incl. refresh/s'],
  ];
  try {
    for (const batchSize of batchSizes) {
      const name = `em_bench_ingest_${batchSize}`;
      const url = await database.create(name);
      const config = loadConfig({
        POLLING_ENABLED: 'false',
        POLL_WRITE_BATCH_SIZE: String(batchSize),
        POLL_BUFFER_MAX_RESULTS: String(meters * cycles + 1000),
      });
      const app = await createApp(config, url);
      await app.init();
      try {
        const dataSource = app.get(DataSource);
        await dataSource.query(
          `INSERT INTO meters (meter_id, address, port) SELECT p::text, '127.0.0.1', p FROM generate_series(9000, 9000 + $1 - 1) AS p`,
          [meters],
        );
        const writer = app.get(ReadingWriter);
        const started = performance.now();
        let written = 0;
        const base = Date.now() - cycles * 60_000;
        for (let cycle = 0; cycle < cycles; cycle++) {
          for (let i = 0; i < meters; i++) writer.enqueue(pollResult(String(9000 + i), base + cycle * 60_000 + i, cycle));
          await writer.flush();
        }
        const seconds = (performance.now() - started) / 1000;
        written = Number((await dataSource.query('SELECT count(*) AS n FROM readings'))[0].n);
        if (written !== meters * cycles) throw new Error(`stored ${written} readings, expected ${meters * cycles}`);
        // Writes only mark hours dirty; the rollups are recomputed apart (RollupRefresher), here all at once.
        const refreshStarted = performance.now();
        const dirtyHours = await app.get(RollupRefresher).refreshAll();
        const refreshSeconds = (performance.now() - refreshStarted) / 1000;
        rows.push([
          int(batchSize),
          int(written),
          seconds.toFixed(2),
          int(written / seconds),
          '2 (readings, health) in 1 transaction',
          `${int(dirtyHours)} dirty hours in ${refreshSeconds.toFixed(2)} s`,
          int(written / (seconds + refreshSeconds)),
        ]);
      } finally {
        await app.close();
        await database.drop(name);
      }
    }
  } finally {
    await database.close();
  }
  console.log(table(rows));
  console.log(`load after: ${loadAverage()}`);
}

/** A successful poll as the meter client returns it: exact decimal strings, the answer's arrival time. */
function pollResult(meterId: string, at: number, cycle: number): PollResult {
  const takenAt = new Date(at);
  return {
    ok: true,
    meterId,
    attemptedAt: takenAt,
    durationMs: 2,
    reading: { meterId, takenAt, currentA: String(10 + (at % 40)), energyKwh: (40_000 + cycle * 1.25 + (at % 997)).toFixed(3) },
  };
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
