import { createServer, Server, Socket } from 'node:net';
import { ReadingsRepository } from '../src/readings/readings.repository';
import { MetersRepository } from '../src/meters/meters.repository';
import { Simulator, startSimulator } from '../tools/meter-simulator/simulator';
import { countReadings, deleteAllMeters, insertMeter } from './support/factories';
import { freePorts } from './support/ports';
import { createTestApp, TestApp } from './support/test-app';

/** Polls `condition` until it holds; fails with `what` when `timeoutMs` passes first. */
async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((wake) => setTimeout(wake, 10));
  }
}

describe('Polling (SPEC 4)', () => {
  let t: TestApp;
  let sims: Simulator[] = [];
  let extraApps: TestApp[] = [];

  /** A simulator serving `n` meters on fresh ports, each registered as meter `<port>` (the simulator's id). */
  const meters = async (n: number, overrides: { enabled?: boolean } = {}) => {
    const ports = await freePorts(n);
    const sim = await startSimulator({ ports });
    sims.push(sim);
    expect(sim.failedPorts).toEqual([]);
    for (const port of ports) await insertMeter(t.dataSource, { meter_id: String(port), port, ...overrides });
    return { sim, ports, ids: ports.map(String) };
  };

  /** Another instance of the service on the same database (a second replica). */
  const replica = async (label: string, env: Record<string, string> = {}) => {
    const app = await createTestApp(label, env, { databaseUrl: t.databaseUrl });
    extraApps.push(app);
    return app;
  };

  const meterOf = async (meterId: string) => (await t.http().get(`/meters/${meterId}`).expect(200)).body;

  beforeAll(async () => {
    t = await createTestApp('polling');
  });

  afterEach(async () => {
    // Replicas first: they share t's database and must be gone before anything else touches it.
    for (const app of extraApps.reverse()) await app.close();
    extraApps = [];
    for (const sim of sims) await sim.stop();
    sims = [];
    await t.writer.flush();
    await deleteAllMeters(t.dataSource);
  });

  afterAll(async () => {
    await t?.close();
  });

  it('reads every enabled meter once per cycle and stores one reading each; disabled meters are left alone', async () => {
    const enabled = await meters(4);
    const disabled = await meters(2, { enabled: false });

    const summary = await t.polling.runCycle();

    expect(summary).toMatchObject({ meters: 4, ok: 4, failed: 0 });
    for (const [i, port] of enabled.ports.entries()) {
      expect(enabled.sim.requestsOf(port)).toBe(1);
      expect(await countReadings(t.dataSource, enabled.ids[i])).toBe(1);
    }
    for (const [i, port] of disabled.ports.entries()) {
      expect(disabled.sim.requestsOf(port)).toBe(0);
      expect(await countReadings(t.dataSource, disabled.ids[i])).toBe(0);
      expect((await meterOf(disabled.ids[i])).health.state).toBe('unknown');
    }
    expect(await countReadings(t.dataSource)).toBe(4);
  });

  it('fans out with bounded concurrency (POLL_CONCURRENCY)', async () => {
    const { sim, ports } = await meters(6);
    for (const port of ports) sim.setFault(port, { kind: 'slow', delayMs: 300 });
    const two = await replica('polling-c2', { POLL_CONCURRENCY: '2' });
    const six = await replica('polling-c6', { POLL_CONCURRENCY: '6' });

    // 6 meters of 300 ms each, 2 at a time: three rounds.
    let started = performance.now();
    expect(await two.polling.runCycle()).toMatchObject({ meters: 6, ok: 6 });
    const withTwo = performance.now() - started;

    await t.releaseClaims();
    started = performance.now();
    expect(await six.polling.runCycle()).toMatchObject({ meters: 6, ok: 6 });
    const withSix = performance.now() - started;

    expect(withTwo).toBeGreaterThanOrEqual(850);
    expect(withSix).toBeLessThan(700);
    for (const port of ports) expect(sim.requestsOf(port)).toBe(2);
    expect(await countReadings(t.dataSource)).toBe(12);
  });

  it('gives each request a hard deadline: hanging, slow and trickling meters never hold up the cycle', async () => {
    const timeoutMs = t.config.polling.timeoutMs; // 1000 in tests
    const { sim, ports, ids } = await meters(5);
    const [hangPort, slowPort] = ports;
    sim.setFault(hangPort, { kind: 'hang' });
    sim.setFault(slowPort, { kind: 'slow', delayMs: timeoutMs * 3 });
    // Headers arrive at once, then the body stops half way: the deadline must cover the body too.
    const [tricklePort] = await freePorts(1);
    const sockets = new Set<Socket>();
    const trickle: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.once('data', () => {
        socket.write(
          `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 60\r\n\r\n{"id": "${tricklePort}", "A": `,
        );
      });
    });
    await new Promise<void>((resolve) => trickle.listen(tricklePort, '127.0.0.1', resolve));
    await insertMeter(t.dataSource, { meter_id: String(tricklePort), port: tricklePort });
    const bad = [ids[0], ids[1], String(tricklePort)];
    const healthy = ids.slice(2);

    try {
      for (const cycle of [1, 2]) {
        const started = performance.now();
        const summary = await t.polling.runCycle();
        const elapsed = performance.now() - started;

        expect(summary).toMatchObject({ meters: 6, ok: 3, failed: 3 });
        expect(elapsed).toBeGreaterThanOrEqual(timeoutMs - 50);
        expect(elapsed).toBeLessThan(timeoutMs + 800);
        for (const id of healthy) {
          expect(await countReadings(t.dataSource, id)).toBe(cycle);
          expect((await meterOf(id)).health).toMatchObject({ state: 'up', consecutive_failures: 0 });
        }
        for (const id of bad) {
          expect(await countReadings(t.dataSource, id)).toBe(0);
          const { health } = await meterOf(id);
          expect(health).toMatchObject({ state: 'down', consecutive_failures: cycle });
          expect(health.last_error).toContain('timeout');
        }
        await t.releaseClaims();
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => trickle.close(resolve));
    }
  }, 15_000);

  it('skips and counts a tick that finds the previous cycle still running', async () => {
    const { sim, ports } = await meters(1);
    sim.setFault(ports[0], { kind: 'slow', delayMs: 600 });
    const { cycles, skippedTicks } = t.polling.stats;

    t.polling.tick(); // no cycle runs: this one starts
    await waitFor('the cycle to reach the meter', () => sim.requestsOf(ports[0]) === 1);
    t.polling.tick(); // the cycle still runs: skipped
    expect(t.polling.stats.skippedTicks).toBe(skippedTicks + 1);
    await waitFor('the cycle to end', () => t.polling.stats.cycles === cycles + 1);
    expect(t.polling.stats.lastCycle).toMatchObject({ meters: 1, ok: 1 });
    expect(sim.requestsOf(ports[0])).toBe(1);
    expect(await countReadings(t.dataSource, String(ports[0]))).toBe(1);

    // Once the cycle is over, the next tick starts a cycle again and is not counted as skipped.
    await new Promise((wake) => setImmediate(wake));
    await t.releaseClaims();
    t.polling.tick();
    await waitFor('the next cycle to end', () => t.polling.stats.cycles === cycles + 2);
    expect(t.polling.stats.skippedTicks).toBe(skippedTicks + 1);
    expect(sim.requestsOf(ports[0])).toBe(2);
  });

  it("writes a cycle's readings in one batch statement, not one per reading", async () => {
    await meters(30);
    const insertBatch = jest.spyOn(t.app.get(ReadingsRepository), 'insertBatch');
    const recordHealth = jest.spyOn(t.app.get(MetersRepository), 'recordHealth');
    const flush = jest.spyOn(t.writer, 'flush');
    try {
      // The writer also flushes on its own once a second; start right after one of those so the cycle (far
      // shorter than a second, checked below) sees only its own write.
      await waitFor("the writer's periodic flush", () => flush.mock.calls.length > 0, 2000);
      insertBatch.mockClear();
      recordHealth.mockClear();

      const summary = await t.polling.runCycle();

      expect(summary).toMatchObject({ meters: 30, ok: 30 });
      expect(summary.durationMs).toBeLessThan(900);
      expect(insertBatch).toHaveBeenCalledTimes(1);
      expect(insertBatch.mock.calls[0][0]).toHaveLength(30);
      await expect(insertBatch.mock.results[0].value).resolves.toBe(30);
      expect(recordHealth).toHaveBeenCalledTimes(1);
      expect(recordHealth.mock.calls[0][0]).toHaveLength(30);
      expect(await countReadings(t.dataSource)).toBe(30);
    } finally {
      insertBatch.mockRestore();
      recordHealth.mockRestore();
      flush.mockRestore();
    }
  });

  it('shows each meter health in GET /meters/{id} and brings a recovered meter back up', async () => {
    const { sim, ports, ids } = await meters(1);
    const [port] = ports;
    const [id] = ids;
    expect((await meterOf(id)).health).toEqual({
      state: 'unknown',
      last_attempt_at: null,
      last_success_at: null,
      last_error: null,
      consecutive_failures: 0,
      last_poll_duration_ms: null,
    });

    sim.setFault(port, { kind: 'slow', delayMs: 200 });
    const before = Date.now();
    await t.polling.runCycle();
    const up = (await meterOf(id)).health;
    expect(up).toEqual({
      state: 'up',
      last_attempt_at: expect.any(String),
      last_success_at: up.last_attempt_at,
      last_error: null,
      consecutive_failures: 0,
      last_poll_duration_ms: expect.any(Number),
    });
    expect(Date.parse(up.last_attempt_at)).toBeGreaterThanOrEqual(before - 5);
    expect(up.last_poll_duration_ms).toBeGreaterThanOrEqual(190);
    expect(up.last_poll_duration_ms).toBeLessThan(1000);

    sim.setFault(port, { kind: 'status', status: 500 });
    for (const failures of [1, 2]) {
      await t.releaseClaims();
      await t.polling.runCycle();
      const down = (await meterOf(id)).health;
      expect(down).toMatchObject({ state: 'down', consecutive_failures: failures, last_success_at: up.last_success_at });
      expect(down.last_error).toContain('HTTP 500');
      expect(Date.parse(down.last_attempt_at)).toBeGreaterThan(Date.parse(up.last_attempt_at));
      expect(down.last_poll_duration_ms).toEqual(expect.any(Number));
    }

    sim.setFault(port, { kind: 'healthy' });
    await t.releaseClaims();
    await t.polling.runCycle();
    const recovered = (await meterOf(id)).health;
    expect(recovered).toMatchObject({ state: 'up', consecutive_failures: 0 });
    expect(recovered.last_success_at).toBe(recovered.last_attempt_at);
    expect(Date.parse(recovered.last_success_at)).toBeGreaterThan(Date.parse(up.last_success_at));
    expect(await countReadings(t.dataSource, id)).toBe(2);
    const listed = await t.http().get('/meters?state=up').expect(200);
    expect(listed.body.items.map((m: { meter_id: string }) => m.meter_id)).toEqual([id]);
  });

  it("stores readings under the polled meter only: an answer naming another registered meter stores nothing", async () => {
    const polled = await meters(1);
    const named = await meters(1, { enabled: false }); // registered, not polled itself
    polled.sim.setFault(polled.ports[0], { kind: 'wrong-id', id: named.ids[0] });

    const summary = await t.polling.runCycle();

    expect(summary).toMatchObject({ meters: 1, ok: 0, failed: 1 });
    expect(polled.sim.requestsOf(polled.ports[0])).toBe(1);
    expect(await countReadings(t.dataSource, polled.ids[0])).toBe(0);
    expect(await countReadings(t.dataSource, named.ids[0])).toBe(0);
    expect(await countReadings(t.dataSource)).toBe(0);
    const { health } = await meterOf(polled.ids[0]);
    expect(health).toMatchObject({ state: 'down', consecutive_failures: 1 });
    expect(health.last_error).toContain('identity-mismatch');
    const other = await meterOf(named.ids[0]);
    expect(other.health).toMatchObject({ state: 'unknown', last_attempt_at: null });
    expect(other.latest_reading).toBeNull();
  });

  it('runs cycles on its own with the scheduler on (POLLING_ENABLED=true)', async () => {
    const { sim, ports, ids } = await meters(3);
    const scheduled = await replica('polling-scheduled', {
      POLLING_ENABLED: 'true',
      POLL_INTERVAL_SECONDS: '1',
      POLL_TIMEOUT_MS: '500',
    });
    const started = Date.now();

    // The first tick runs at start, the next ones every second: two cycles well within 2.5 s.
    await waitFor(
      'two scheduled readings of every meter',
      async () => (await Promise.all(ids.map((id) => countReadings(t.dataSource, id)))).every((n) => n >= 2),
      2500,
    );
    expect(Date.now() - started).toBeLessThan(2500);
    expect(scheduled.polling.stats.cycles).toBeGreaterThanOrEqual(2);
    expect(scheduled.polling.schedulerAlive).toBe(true);
    for (const port of ports) expect(sim.requestsOf(port)).toBeGreaterThanOrEqual(2);
  });

  it('lets two instances sharing one database poll each meter once per interval', async () => {
    const { sim, ports, ids } = await meters(20);
    for (const port of ports) sim.setFault(port, { kind: 'slow', delayMs: 100 });
    const second = await replica('polling-second');

    for (const round of [1, 2, 3]) {
      const [a, b] = await Promise.all([t.polling.runCycle(), second.polling.runCycle()]);
      expect(a.meters + b.meters).toBe(20);
      expect(a.ok + b.ok).toBe(20);
      for (const port of ports) expect(sim.requestsOf(port)).toBe(round);
      expect(await countReadings(t.dataSource)).toBe(20 * round);
      // Within the interval, neither instance finds anything more to poll.
      const [again, againSecond] = await Promise.all([t.polling.runCycle(), second.polling.runCycle()]);
      expect(again.meters + againSecond.meters).toBe(0);
      await t.releaseClaims();
    }
    for (const id of ids) expect(await countReadings(t.dataSource, id)).toBe(3);
  });

  it('stores nothing for a meter deleted while its poll is in flight', async () => {
    const { sim, ports, ids } = await meters(2);
    const [slowPort] = ports;
    const [deletedId, keptId] = ids;
    // Slow enough for the DELETE to land while the poll waits, within the 1000 ms deadline.
    sim.setFault(slowPort, { kind: 'slow', delayMs: 800 });
    const failuresBefore = t.writer.stats.writeFailures;

    const cycle = t.polling.runCycle();
    await waitFor('the poll to reach the meter', () => sim.requestsOf(slowPort) === 1);
    await t.http().delete(`/meters/${deletedId}`).expect(204);
    const summary = await cycle;

    expect(summary).toMatchObject({ meters: 2, ok: 2, failed: 0 });
    expect(await countReadings(t.dataSource, deletedId)).toBe(0);
    expect(await countReadings(t.dataSource, keptId)).toBe(1);
    expect(await countReadings(t.dataSource)).toBe(1);
    expect(t.writer.stats.writeFailures).toBe(failuresBefore);
    expect(t.writer.stats.buffered).toBe(0);
    await t.http().get(`/meters/${deletedId}`).expect(404);
  });
});
