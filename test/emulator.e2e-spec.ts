import { request as httpRequest } from 'node:http';
import { SEED_METER_IDS, seedMeters, seedReadings } from '../src/database/seed';
import { Simulator, startSimulator } from '../tools/meter-simulator/simulator';
import { countReadings, deleteAllMeters } from './support/factories';
import { freePorts } from './support/ports';
import { createTestApp, TestApp } from './support/test-app';

/** One raw GET, so that what the emulator sends is seen as it is, headers and body text. */
function rawGet(url: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'GET', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Emulator mode (SPEC 1)', () => {
  let t: TestApp;
  let sim: Simulator;
  let emulatorPort: number;

  beforeAll(async () => {
    [emulatorPort] = await freePorts(1);
    sim = await startSimulator({ emulatorPort, publicEmulator: true });
    // The default deadline: the simulator shares this process's event loop with the app, and a busy machine must
    // not turn 150 answers into timeouts (deadlines are polling.e2e-spec's subject, not this file's).
    t = await createTestApp('emulator', {
      METER_URL_TEMPLATE: `http://{address}:${emulatorPort}/{port}`,
      POLL_TIMEOUT_MS: '5000',
    });
  });

  beforeEach(async () => {
    await deleteAllMeters(t.dataSource);
  });

  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });

  it('polls the 150 seed meters through the public emulator: all up, one reading each per cycle', async () => {
    expect(await seedMeters(t.dataSource)).toBe(150);

    const first = await t.polling.runCycle();
    expect(first).toMatchObject({ meters: 150, ok: 150, failed: 0 });

    const readings: { meter_id: string; current_a: string; energy_kwh: string }[] = await t.dataSource.query(
      'SELECT meter_id, current_a::text, energy_kwh::text FROM readings ORDER BY meter_id',
    );
    expect(readings.map((r) => r.meter_id)).toEqual(SEED_METER_IDS);
    for (const reading of readings) {
      expect(Number(reading.energy_kwh)).toBe(22);
      const amps = Number(reading.current_a);
      expect(Number.isInteger(amps)).toBe(true);
      expect(amps).toBeGreaterThanOrEqual(0);
      expect(amps).toBeLessThanOrEqual(50);
    }
    for (const id of SEED_METER_IDS) expect(sim.requestsOf(Number(id))).toBe(1);

    const up = await t.http().get('/meters?state=up&limit=1000').expect(200);
    expect(up.body.total).toBe(150);
    expect(up.body.items.map((m: { meter_id: string }) => m.meter_id)).toEqual(SEED_METER_IDS);
    for (const meter of up.body.items) {
      expect(meter.health).toMatchObject({ state: 'up', consecutive_failures: 0, last_error: null });
      expect(meter.latest_reading).toMatchObject({ energy_kwh: 22, current_a: expect.any(Number) });
    }
    await t.http().get('/meters?state=down').expect(200).expect((res) => expect(res.body.total).toBe(0));

    await t.releaseClaims();
    const second = await t.polling.runCycle();
    expect(second).toMatchObject({ meters: 150, ok: 150, failed: 0 });
    for (const id of SEED_METER_IDS) expect(await countReadings(t.dataSource, id)).toBe(2);
    await t.http().get('/meters?state=up').expect(200).expect((res) => expect(res.body.total).toBe(150));
  });

  it('answers exactly like the public emulator: 200, application/json, id = the path port, A 0..50, kW "22"', async () => {
    const seenAmps = new Set<string>();
    for (const port of [1000, 1149, 9000, 65000]) {
      for (let i = 0; i < 5; i++) {
        const response = await rawGet(`http://127.0.0.1:${emulatorPort}/${port}`);
        expect(response.status).toBe(200);
        expect(response.headers['content-type']).toBe('application/json');
        const body = JSON.parse(response.body) as Record<string, unknown>;
        expect(Object.keys(body).sort()).toEqual(['A', 'id', 'kW']);
        expect(body.id).toBe(String(port));
        expect(body.kW).toBe('22');
        expect(body.A).toEqual(expect.stringMatching(/^(?:[0-9]|[1-4][0-9]|50)$/));
        seenAmps.add(body.A as string);
      }
    }
    // A is drawn at random on every answer, not a constant.
    expect(seenAmps.size).toBeGreaterThan(1);
  });

  it('seed:data gives meter 1000 a hundred readings with a growing counter, all counted by the stats', async () => {
    const now = new Date();
    expect(await seedReadings(t.dataSource, now)).toBe(100);

    const rows: { taken_at: Date; energy_kwh: string }[] = await t.dataSource.query(
      `SELECT taken_at, energy_kwh::text FROM readings WHERE meter_id = '1000' ORDER BY taken_at`,
    );
    expect(rows).toHaveLength(100);
    for (let i = 1; i < rows.length; i++) {
      expect(Number(rows[i].energy_kwh)).toBeGreaterThan(Number(rows[i - 1].energy_kwh));
    }
    const spanMs = rows[99].taken_at.getTime() - rows[0].taken_at.getTime();
    expect(spanMs).toBeGreaterThanOrEqual(3 * 3_600_000); // spread over the past hours, not one instant
    expect(rows[99].taken_at.getTime()).toBeLessThanOrEqual(now.getTime());

    const start = new Date(now.getTime() - 12 * 3_600_000).toISOString();
    const end = new Date(now.getTime() + 60_000).toISOString();
    const stats = await t.http().get('/meters/1000/stats').query({ start_date: start, end_date: end }).expect(200);
    expect(stats.body).toMatchObject({
      meter_id: '1000',
      readings: 100,
      first_reading_at: rows[0].taken_at.toISOString(),
      last_reading_at: rows[99].taken_at.toISOString(),
      resets: 0,
      misreads: 0,
    });
    const expected = Number(rows[99].energy_kwh) - Number(rows[0].energy_kwh);
    expect(stats.body.consumption_kwh).toBeCloseTo(expected, 6);
    expect(stats.body.consumption_kwh).toBeGreaterThan(0);
  });
});
