import { SchedulerRegistry } from '@nestjs/schedule';
import { MeterClient, PollResult } from '../src/polling/meter-client';
import { Simulator, startSimulator } from '../tools/meter-simulator/simulator';
import { createTestDatabase, TestDatabase } from './setup/test-database';
import { insertMeter } from './support/factories';
import { freePorts } from './support/ports';
import { startTcpProxy, TcpProxy } from './support/tcp-proxy';
import { createTestApp, TestApp } from './support/test-app';

/**
 * Issue 6.2: /health/live and /health/ready (terminus). Readiness goes 503 for each of its causes on its own,
 * naming it under `error`, while liveness stays 200; /health answers as readiness.
 */

type Check = { status: string; message?: string; [field: string]: unknown };
interface Probe {
  status: number;
  body: { status: string; info: Record<string, Check>; error: Record<string, Check>; details: Record<string, Check> };
}

async function probe(t: TestApp, path: string): Promise<Probe> {
  const response = await t.http().get(path);
  return { status: response.status, body: response.body as Probe['body'] };
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((wake) => setTimeout(wake, 100));
  }
}

/** Readiness is 503 with exactly `cause` down (the other checks up), and liveness is 200 meanwhile. */
async function expectNotReadyBecauseOf(t: TestApp, cause: string, message: RegExp): Promise<Probe> {
  const ready = await probe(t, '/health/ready');
  expect(ready.status).toBe(503);
  expect(ready.body.status).toBe('error');
  expect(Object.keys(ready.body.error)).toEqual([cause]);
  expect(ready.body.error[cause]).toMatchObject({ status: 'down', message: expect.stringMatching(message) });
  for (const other of ['database', 'scheduler', 'buffer'].filter((key) => key !== cause)) {
    expect({ other, status: ready.body.details[other]?.status }).toEqual({ other, status: 'up' });
  }
  const legacy = await probe(t, '/health');
  expect({ status: legacy.status, down: Object.keys(legacy.body.error) }).toEqual({ status: 503, down: [cause] });
  const live = await probe(t, '/health/live');
  expect({ status: live.status, body: live.body.status }).toEqual({ status: 200, body: 'ok' });
  return ready;
}

describe('Liveness and readiness probes (issue 6.2)', () => {
  describe('when all is well', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp('health_ok');
    });
    afterAll(async () => {
      await t?.close();
    });

    it('answers /health/ready and /health 200 with every check up, in terminus body', async () => {
      for (const path of ['/health/ready', '/health']) {
        const ready = await probe(t, path);
        expect(ready.status).toBe(200);
        expect(ready.body).toMatchObject({
          status: 'ok',
          error: {},
          details: {
            database: { status: 'up', response_time_ms: expect.any(Number) },
            scheduler: { status: 'up', polling_enabled: false },
            buffer: { status: 'up', buffered: 0, capacity: t.config.polling.maxBufferedResults, dropped: 0, ready_below_percent: 80 },
          },
        });
        expect(ready.body.info).toEqual(ready.body.details);
      }
    });

    it('answers /health/live 200 with the process and its event loop delay', async () => {
      const live = await probe(t, '/health/live');
      expect(live.status).toBe(200);
      expect(live.body).toMatchObject({
        status: 'ok',
        error: {},
        details: {
          process: {
            status: 'up',
            pid: process.pid,
            uptime_seconds: expect.any(Number),
            event_loop_delay_ms: { p50: expect.any(Number), p99: expect.any(Number), max: expect.any(Number) },
          },
        },
      });
    });

    it('tells caches not to keep a probe answer, and takes a trailing slash', async () => {
      for (const path of ['/health/live/', '/health/ready/', '/health/']) {
        const response = await t.http().get(path).expect(200);
        expect(response.headers['cache-control']).toBe('no-cache, no-store, must-revalidate');
      }
    });
  });

  describe('when the database is gone', () => {
    let database: TestDatabase;
    let proxy: TcpProxy;
    let t: TestApp;
    beforeAll(async () => {
      database = await createTestDatabase('health_database');
      const target = new URL(database.url);
      proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
      t = await createTestApp('health_database', {}, { databaseUrl: proxy.urlThrough(database.url) });
    });
    afterAll(async () => {
      proxy?.resume();
      await proxy?.restore();
      await t?.close();
      await proxy?.close();
      await database?.drop();
    });

    it('is not ready while connections are refused, live all along, and ready again once it is back', async () => {
      expect((await probe(t, '/health/ready')).status).toBe(200);
      await proxy.cut();
      const ready = await expectNotReadyBecauseOf(t, 'database', /^unreachable$/);
      // The driver's text (hosts, users) stays out of a probe anyone may call.
      expect(JSON.stringify(ready.body)).not.toContain(String(proxy.port));
      await proxy.restore();
      await waitFor('readiness after the restore', async () => (await probe(t, '/health/ready')).status === 200, 10_000);
    });

    it('is not ready when the database hangs, after the 2 s check deadline', async () => {
      proxy.hang();
      const started = Date.now();
      await expectNotReadyBecauseOf(t, 'database', /^no answer within 2000 ms$/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
      proxy.resume();
      await waitFor('readiness after the hang', async () => (await probe(t, '/health/ready')).status === 200, 10_000);
    });
  });

  describe('when the write buffer overflows', () => {
    const METERS = 100;
    let sim: Simulator;
    let t: TestApp;
    beforeAll(async () => {
      const ports = await freePorts(METERS);
      sim = await startSimulator({ ports });
      expect(sim.failedPorts).toEqual([]);
      // Polling off (cycles driven here); the interval sets how long recent drops keep it not ready (2 × 2 s + 5 s).
      t = await createTestApp('health_buffer', { POLL_BUFFER_MAX_RESULTS: '1000', POLL_INTERVAL_SECONDS: '2' });
      for (const port of ports) await insertMeter(t.dataSource, { meter_id: String(port), port });
      // The database answers, but refuses every write of readings: results stay buffered.
      await t.dataSource.query(`CREATE FUNCTION health_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'writes refused by the test'; END $$`);
      await t.dataSource.query(
        'CREATE TRIGGER health_test_refuse BEFORE INSERT ON readings FOR EACH STATEMENT EXECUTE FUNCTION health_test_refuse()',
      );
    });
    afterAll(async () => {
      await t?.dataSource.query('DROP TRIGGER IF EXISTS health_test_refuse ON readings').catch(() => undefined);
      await t?.close();
      await sim?.stop();
    });

    const cycle = async () => {
      await t.releaseClaims();
      expect(await t.polling.runCycle()).toMatchObject({ meters: METERS, ok: METERS });
    };

    it('stays ready below 80% full, goes not ready from 80%, names drops, and is ready again once written', async () => {
      for (let i = 0; i < 7; i++) await cycle();
      const below = await probe(t, '/health/ready');
      expect(below.status).toBe(200);
      expect(below.body.details.buffer).toMatchObject({
        status: 'up',
        buffered: 700,
        fill_percent: 70,
        dropped: 0,
        writes_failing_since: expect.any(String),
      });

      await cycle();
      const full = await expectNotReadyBecauseOf(t, 'buffer', /^buffer 80% full \(not ready from 80%\)$/);
      expect(full.body.error.buffer).toMatchObject({ buffered: 800, fill_percent: 80, dropped: 0 });

      for (let i = 0; i < 3; i++) await cycle();
      const dropping = await expectNotReadyBecauseOf(t, 'buffer', /^poll results were dropped \d+ s ago \(buffer full\)$/);
      expect(dropping.body.error.buffer).toMatchObject({
        buffered: 1000,
        capacity: 1000,
        fill_percent: 100,
        dropped: 100,
        last_dropped_at: expect.any(String),
      });

      await t.dataSource.query('DROP TRIGGER health_test_refuse ON readings');
      await waitFor('the buffer to be written', async () => t.writer.stats.buffered === 0, 15_000);
      // Written, but the drops are recent: still not ready until they are two intervals and 5 s old.
      expect((await probe(t, '/health/ready')).body.details.buffer.status).toBe('down');
      await waitFor('readiness once the drops are old', async () => (await probe(t, '/health/ready')).status === 200, 15_000);
    }, 60_000);
  });

  describe('when the scheduler is stuck', () => {
    let sim: Simulator;
    let t: TestApp;
    let releaseHungPolls: () => void = () => undefined;
    let closed = false;
    beforeAll(async () => {
      const [port] = await freePorts(1);
      sim = await startSimulator({ ports: [port] });
      t = await createTestApp('health_scheduler', { POLLING_ENABLED: 'true', POLL_INTERVAL_SECONDS: '1', POLL_TIMEOUT_MS: '500' });
      await insertMeter(t.dataSource, { meter_id: String(port), port });
    });
    afterAll(async () => {
      releaseHungPolls();
      if (!closed) await t?.close();
      await sim?.stop();
    });

    it('is not ready while a cycle hangs (ticks skipped) and ready again when it ends', async () => {
      await waitFor('a first cycle', async () => t.polling.stats.cycles > 0, 10_000);
      expect((await probe(t, '/health/ready')).status).toBe(200);
      // A poll that never ends (every real one has a deadline: this stands for a bug), so the cycle never ends.
      const client = t.app.get(MeterClient);
      const read = client.read.bind(client);
      const hung: (() => void)[] = [];
      client.read = (...args: Parameters<MeterClient['read']>) =>
        new Promise<PollResult>((resolve) => hung.push(() => resolve(read(...args))));
      releaseHungPolls = () => {
        client.read = read;
        for (const release of hung.splice(0)) release();
      };

      await waitFor('readiness to see the stuck cycle', async () => (await probe(t, '/health/ready')).status === 503, 15_000);
      const stuck = await expectNotReadyBecauseOf(t, 'scheduler', /^a cycle has been running for \d+ s$/);
      expect(stuck.body.error.scheduler).toMatchObject({ polling_enabled: true, cycle_running_since: expect.any(String) });
      expect(stuck.body.error.scheduler.skipped_ticks).toBeGreaterThan(0);

      releaseHungPolls();
      await waitFor('readiness after the cycle ended', async () => (await probe(t, '/health/ready')).status === 200, 10_000);
    }, 40_000);

    it('is not ready when the scheduler stops ticking', async () => {
      t.app.get(SchedulerRegistry).deleteInterval('polling-tick');
      await waitFor('readiness to see no ticks', async () => (await probe(t, '/health/ready')).status === 503, 15_000);
      await expectNotReadyBecauseOf(t, 'scheduler', /^no tick for \d+ s$/);
    }, 30_000);

    it('answers 503 shutting_down on both probes from the start of a stop, while polls in flight drain', async () => {
      const client = t.app.get(MeterClient);
      const read = client.read.bind(client);
      const hung: (() => void)[] = [];
      client.read = (...args: Parameters<MeterClient['read']>) =>
        new Promise<PollResult>((resolve) => hung.push(() => resolve(read(...args))));
      releaseHungPolls = () => {
        client.read = read;
        for (const release of hung.splice(0)) release();
      };
      await t.releaseClaims();
      const cycle = t.polling.runCycle();
      await waitFor('a poll in flight', async () => hung.length > 0, 5000);
      const stopping = t.close();
      closed = true;
      // The stop waits for the poll in flight (up to SHUTDOWN_GRACE_MS); the probes still answer meanwhile.
      await new Promise((wake) => setTimeout(wake, 300));
      for (const path of ['/health/ready', '/health', '/health/live']) {
        const answer = await probe(t, path);
        expect({ path, status: answer.status, body: answer.body.status }).toEqual({ path, status: 503, body: 'shutting_down' });
      }
      releaseHungPolls();
      await cycle;
      await stopping;
    }, 30_000);
  });
});
