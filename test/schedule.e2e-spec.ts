import { Simulator, startSimulator } from '../tools/meter-simulator/simulator';
import { countReadings, insertMeter } from './support/factories';
import { freePorts } from './support/ports';
import { createTestApp, TestApp } from './support/test-app';

const METERS = 20;

/** `taken_at` of each meter's readings taken at or after `since`, in ms since the epoch. */
async function takenAtSince(t: TestApp, since: number): Promise<Map<string, number>> {
  const rows: { meter_id: string; taken_at: Date }[] = await t.dataSource.query(
    'SELECT meter_id, taken_at FROM readings WHERE taken_at >= $1 ORDER BY taken_at',
    [new Date(since)],
  );
  const byMeter = new Map<string, number>();
  for (const row of rows) {
    if (byMeter.has(row.meter_id)) throw new Error(`meter ${row.meter_id} was read twice in one cycle`);
    byMeter.set(row.meter_id, row.taken_at.getTime());
  }
  return byMeter;
}

/** One cycle from now: each meter's reading time as an offset (ms) from the cycle's start. */
async function cycleOffsets(t: TestApp): Promise<Map<string, number>> {
  await t.releaseClaims();
  const start = Date.now();
  const summary = await t.polling.runCycle();
  expect(summary).toMatchObject({ meters: METERS, ok: METERS, failed: 0 });
  const taken = await takenAtSince(t, start);
  expect(taken.size).toBe(METERS);
  return new Map([...taken].map(([meterId, at]) => [meterId, at - start]));
}

const spreadOf = (values: Iterable<number>) => {
  const all = [...values];
  return Math.max(...all) - Math.min(...all);
};

describe('Poll schedule within the interval (SPEC 4)', () => {
  let sim: Simulator;
  let ports: number[];
  const ids = Array.from({ length: METERS }, (_, i) => `sched-${String(i).padStart(2, '0')}`);
  const idOfPort = new Map<number, string>();
  const portOf = new Map<string, number>();

  beforeAll(async () => {
    ports = await freePorts(METERS);
    ports.forEach((port, i) => {
      idOfPort.set(port, ids[i]);
      portOf.set(ids[i], port);
    });
    sim = await startSimulator({ ports, idOf: (port) => idOfPort.get(port) ?? String(port) });
    expect(sim.failedPorts).toEqual([]);
  });
  afterAll(async () => {
    await sim?.stop();
  });

  const register = async (t: TestApp) => {
    for (const meterId of ids) await insertMeter(t.dataSource, { meter_id: meterId, port: portOf.get(meterId) });
  };

  describe('spread (POLL_SCHEDULE=spread)', () => {
    let t: TestApp;

    beforeAll(async () => {
      t = await createTestApp('schedule_spread', {
        POLL_SCHEDULE: 'spread',
        POLL_INTERVAL_SECONDS: '3',
        POLL_TIMEOUT_MS: '500',
      });
      await register(t);
    });
    afterAll(async () => {
      await t?.close();
    });

    it('spreads the reads over the interval, each meter at a stable offset that a slow meter does not shift', async () => {
      const first = await cycleOffsets(t);
      // Not all at once: the reads cover more than a second of the 3 s interval...
      expect(spreadOf(first.values())).toBeGreaterThan(1000);
      // ...and all fall inside it, leaving a whole deadline before the next tick.
      expect(Math.max(...first.values())).toBeLessThan(3000 - 500);

      // The next cycle, with one meter slow: every other meter is read at the same offset as before. The slow one
      // is the meter with another due soonest after it, inside the 400 ms it holds its request open, so that a
      // cycle letting it delay the ones after it would show.
      const gapToNext = (meterId: string) =>
        Math.min(...ids.map((other) => first.get(other)! - first.get(meterId)!).filter((gap) => gap > 0));
      const slowId = [...ids].sort((a, b) => gapToNext(a) - gapToNext(b))[0];
      expect(gapToNext(slowId)).toBeLessThan(150);
      sim.setFault(portOf.get(slowId)!, { kind: 'slow', delayMs: 400 });
      await sim.settle();
      const second = await cycleOffsets(t);
      sim.setFault(portOf.get(slowId)!, { kind: 'healthy' });

      const TOLERANCE_MS = 150;
      for (const meterId of ids) {
        if (meterId === slowId) continue;
        const shift = second.get(meterId)! - first.get(meterId)!;
        expect({ meterId, shift: Math.abs(shift) <= TOLERANCE_MS ? 'stable' : shift }).toEqual({
          meterId,
          shift: 'stable',
        });
      }
      // The slow meter's own answer came 400 ms later than its slot (the measurement sees the fault).
      const slowShift = second.get(slowId)! - first.get(slowId)!;
      expect(slowShift).toBeGreaterThan(400 - TOLERANCE_MS);
      expect(slowShift).toBeLessThan(400 + TOLERANCE_MS);
    });
  });

  describe('burst (POLL_SCHEDULE=burst, the tests default)', () => {
    let t: TestApp;

    beforeAll(async () => {
      t = await createTestApp('schedule_burst', { POLL_TIMEOUT_MS: '1000' });
      await register(t);
    });
    afterAll(async () => {
      await t?.close();
    });

    it('reads every meter at once', async () => {
      const offsets = await cycleOffsets(t);
      expect(spreadOf(offsets.values())).toBeLessThan(500);
    });

    it('gives a live read of a meter whose cycle poll is in flight that same poll: one request, one reading', async () => {
      const meterId = ids[5];
      const port = portOf.get(meterId)!;
      sim.setFault(port, { kind: 'slow', delayMs: 400 });
      await sim.settle();
      await t.releaseClaims();
      const requestsBefore = sim.requestsOf(port);
      const readingsBefore = await countReadings(t.dataSource, meterId);

      const cycle = t.polling.runCycle();
      // Wait until the cycle's request has reached the meter, then ask for live data.
      const deadline = Date.now() + 2000;
      while (sim.requestsOf(port) === requestsBefore) {
        if (Date.now() > deadline) throw new Error('the cycle never polled the slow meter');
        await new Promise((wake) => setTimeout(wake, 5));
      }
      const live = await t.http().get(`/meters/${meterId}/data`).expect(200);
      const summary = await cycle;
      sim.setFault(port, { kind: 'healthy' });

      expect(summary).toMatchObject({ meters: METERS, ok: METERS });
      expect(sim.requestsOf(port) - requestsBefore).toBe(1);
      expect(await countReadings(t.dataSource, meterId)).toBe(readingsBefore + 1);
      const [stored]: { taken_at: Date; energy_kwh: string }[] = await t.dataSource.query(
        'SELECT taken_at, energy_kwh FROM readings WHERE meter_id = $1 ORDER BY taken_at DESC LIMIT 1',
        [meterId],
      );
      expect(live.body.taken_at).toBe(stored.taken_at.toISOString());
      expect(live.body.energy_kwh).toBe(Number(stored.energy_kwh));
    });
  });
});
