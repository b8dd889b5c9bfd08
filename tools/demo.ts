/**
 * `npm run demo`: the service on its embedded default, reading the 150 seed meters from the simulator in the
 * emulator layout, so a newcomer sees readings arrive within one interval. Ctrl-C stops everything.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { seedMeters, seedReadings } from '../src/database/seed';
import { withDatabase } from './db-tool';
import { startSimulator, Simulator } from './meter-simulator/simulator';

const EMULATOR_PORT = Number(process.env.DEMO_EMULATOR_PORT ?? 8001);
const SEED_PORTS = Array.from({ length: 150 }, (_, i) => 1000 + i);

async function main(): Promise<void> {
  const lastSeededKwh = await withDatabase(async (dataSource) => {
    const meters = await seedMeters(dataSource);
    const readings = await seedReadings(dataSource);
    console.log(`demo: seeded ${meters} meters and ${readings} readings for meter 1000`);
    const [last]: { energy_kwh: string }[] = await dataSource.query(
      `SELECT energy_kwh FROM readings WHERE meter_id = '1000' ORDER BY taken_at DESC LIMIT 1`,
    );
    return Number(last.energy_kwh);
  });

  let simulator: Simulator | null = null;
  try {
    // Counters run 60 times faster than real time so that consumption shows within minutes; meter 1000 carries
    // on from its seeded history instead of jumping.
    simulator = await startSimulator({
      emulatorPort: EMULATOR_PORT,
      ports: SEED_PORTS,
      speedup: 60,
      bindRetries: 0,
      startKwh: (port) => (port === 1000 ? lastSeededKwh : 10_000 + (port - 1000) * 97),
    });
    console.log(`demo: simulator serving meters 1000..1149 at http://127.0.0.1:${EMULATOR_PORT}/<port>`);
  } catch (error) {
    console.log(`demo: port ${EMULATOR_PORT} is taken (${String(error)}); reading whatever emulator answers there`);
  }

  const env = {
    ...process.env,
    METER_URL_TEMPLATE: process.env.METER_URL_TEMPLATE ?? `http://{address}:${EMULATOR_PORT}/{port}`,
    POLL_INTERVAL_SECONDS: process.env.POLL_INTERVAL_SECONDS ?? '10',
  };
  const service = spawn(process.execPath, [join(__dirname, '..', 'src', 'main.js')], { env, stdio: 'inherit' });
  const port = process.env.PORT ?? '3000';
  console.log(
    `demo: service starting; open http://localhost:${port}/docs (Swagger UI), ` +
      `http://localhost:${port}/meters?state=up and http://localhost:${port}/meters/1000/data`,
  );
  const stop = (signal: NodeJS.Signals) => service.kill(signal);
  process.on('SIGINT', () => stop('SIGTERM'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  service.on('exit', (code) => {
    void (simulator?.stop() ?? Promise.resolve()).then(() => process.exit(code ?? 0));
  });
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
