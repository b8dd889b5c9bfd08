import { startSimulator, Simulator } from '../tools/meter-simulator/simulator';
import { countReadings, insertMeter } from './support/factories';
import { freePorts } from './support/ports';
import { createTestApp, TestApp } from './support/test-app';

describe('Live read GET /meters/{id}/data (SPEC 3)', () => {
  let t: TestApp;
  let sim: Simulator;
  let ports: number[];

  beforeAll(async () => {
    ports = await freePorts(12);
    sim = await startSimulator({ ports });
    t = await createTestApp('live', { POLL_TIMEOUT_MS: '700' });
    for (const port of ports) await insertMeter(t.dataSource, { meter_id: String(port), port });
  });
  afterAll(async () => {
    await t.close();
    await sim.stop();
  });

  const health = async (meterId: string) => {
    await t.writer.flush();
    return (await t.http().get(`/meters/${meterId}`).expect(200)).body.health;
  };

  it('reads the meter, stores the reading and answers it with JSON numbers', async () => {
    const meterId = String(ports[0]);
    const response = await t.http().get(`/meters/${meterId}/data/`).expect(200);
    expect(response.body).toEqual({
      meter_id: meterId,
      current_a: expect.any(Number),
      energy_kwh: expect.any(Number),
      taken_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    const [stored] = await t.dataSource.query(
      'SELECT taken_at, energy_kwh FROM readings WHERE meter_id = $1',
      [meterId],
    );
    expect(stored.taken_at.toISOString()).toBe(response.body.taken_at);
    expect(Number(stored.energy_kwh)).toBe(response.body.energy_kwh);
    const meter = (await t.http().get(`/meters/${meterId}`).expect(200)).body;
    expect(meter.health).toMatchObject({ state: 'up', consecutive_failures: 0 });
    expect(meter.latest_reading).toEqual({
      current_a: response.body.current_a,
      energy_kwh: response.body.energy_kwh,
      taken_at: response.body.taken_at,
    });
  });

  it('answers 404 for an unknown meter', async () => {
    await t.http().get('/meters/unknown/data').expect(404);
  });

  it.each([
    ['hangs', 1, { kind: 'hang' }, 504, 'timeout'],
    ['is slower than the deadline', 2, { kind: 'slow', delayMs: 3000 }, 504, 'timeout'],
    ['refuses connections', 3, { kind: 'refuse' }, 502, 'refused'],
    ['answers 500', 4, { kind: 'status', status: 500 }, 502, 'HTTP 500'],
    ['redirects', 5, { kind: 'redirect', location: 'http://169.254.169.254/' }, 502, 'redirect'],
    ['sends garbage', 6, { kind: 'garbage' }, 502, 'bad-payload'],
    ['sends NaN for kW', 7, { kind: 'bad-value', field: 'kW', value: 'NaN' }, 502, 'kW'],
    ['names another id', 8, { kind: 'wrong-id', id: 'someone-else' }, 502, 'identity-mismatch'],
    ['sends a negative A', 9, { kind: 'bad-value', field: 'A', value: -98765.25 }, 502, 'field "A" is negative'],
  ] as const)(
    'when the meter %s: %d with a JSON error, nothing stored, health down',
    async (_name, index, fault, status, reason) => {
      const port = ports[index];
      const meterId = String(port);
      sim.setFault(port, fault);
      await sim.settle();
      const started = Date.now();
      const response = await t.http().get(`/meters/${meterId}/data`);
      expect(response.status).toBe(status);
      expect(Date.now() - started).toBeLessThan(700 + 1500);
      expect(response.body).toEqual({
        statusCode: status,
        error: status === 504 ? 'Gateway Timeout' : 'Bad Gateway',
        message: expect.stringContaining(reason),
      });
      // The meter's own body is never relayed.
      expect(JSON.stringify(response.body)).not.toContain('<html');
      expect(await countReadings(t.dataSource, meterId)).toBe(0);
      const after = await health(meterId);
      expect(after).toMatchObject({ state: 'down', consecutive_failures: 1 });
      expect(after.last_error).toContain(reason);
      // Nor are its values (the negative A is -98765.25).
      expect(`${response.body.message} ${after.last_error}`).not.toContain('98765');
    },
  );

  it('shares one request among a hundred concurrent live reads of one meter', async () => {
    // Its own app with a long deadline and a meter slower than it takes a loaded machine to send 100 requests:
    // every request arrives while the one meter request is in flight.
    const slowApp = await createTestApp('live_shared', { POLL_TIMEOUT_MS: '8000' });
    try {
      const port = ports[10];
      await insertMeter(slowApp.dataSource, { meter_id: String(port), port });
      sim.setFault(port, { kind: 'slow', delayMs: 3000 });
      const before = sim.requestsOf(port);
      const responses = await Promise.all(
        Array.from({ length: 100 }, () => slowApp.http().get(`/meters/${port}/data`)),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
      expect(new Set(responses.map((r) => r.body.taken_at)).size).toBe(1);
      expect(sim.requestsOf(port) - before).toBe(1);
      expect(await countReadings(slowApp.dataSource, String(port))).toBe(1);
    } finally {
      await slowApp.close();
    }
  });
});
