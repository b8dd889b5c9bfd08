import { Client } from 'pg';
import { PollResult } from '../src/polling/meter-client';
import { Simulator, startSimulator } from '../tools/meter-simulator/simulator';
import { createTestDatabase, TestDatabase } from './setup/test-database';
import { freePorts } from './support/ports';
import { startTcpProxy, TcpProxy } from './support/tcp-proxy';
import { createTestApp, TestApp } from './support/test-app';
import { sample } from './support/prometheus';

/**
 * The database goes away while polling runs (SPEC 9: never a lost reading when the database blips). The app
 * reaches PostgreSQL through a TCP proxy; cutting it refuses new connections and resets the open ones, the way a
 * crashed or restarted server looks to the app. Every figure is checked against what the meters served.
 */

const OUTAGE_MS = 120_000;
const INTERVAL_SECONDS = 1;


async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((wake) => setTimeout(wake, 50));
  }
  return Date.now() - started;
}

const pause = (ms: number) => new Promise((wake) => setTimeout(wake, ms));
const key = (meterId: string, takenAt: Date) => `${meterId}@${takenAt.toISOString()}`;

/** One scenario's world: a database, a proxy in front of it, meters, and the app polling them through the proxy. */
interface World {
  database: TestDatabase;
  direct: Client;
  proxy: TcpProxy;
  sim: Simulator;
  ids: string[];
  t: TestApp;
  /** Stops the app once (its shutdown writes what is buffered). */
  stop(): Promise<void>;
  /** Every poll result handed to the writer, in order. */
  enqueued: PollResult[];
  /** Every result of a write that succeeded, in the order written. */
  written: PollResult[];
  requests(): number;
  stored(): Promise<Set<string>>;
  count(): Promise<number>;
  health(): Promise<{ status: number; body: Record<string, unknown> }>;
  metrics(): Promise<string>;
}

const worlds: World[] = [];

async function world(label: string, meters: number, env: Record<string, string>): Promise<World> {
  const database = await createTestDatabase(label);
  const direct = new Client({ connectionString: database.url });
  await direct.connect();
  const target = new URL(database.url);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  const ports = await freePorts(meters);
  const sim = await startSimulator({ ports });
  expect(sim.failedPorts).toEqual([]);
  const ids = ports.map(String);
  const partial = { database, direct, proxy, sim, ids } as World;
  worlds.push(partial);

  const t = await createTestApp(
    label,
    {
      POLLING_ENABLED: 'true',
      POLL_INTERVAL_SECONDS: String(INTERVAL_SECONDS),
      POLL_TIMEOUT_MS: '900',
      POLL_SCHEDULE: 'burst',
      POLL_WRITE_BATCH_SIZE: '500',
      ...env,
    },
    { databaseUrl: proxy.urlThrough(database.url) },
  );
  partial.t = t;
  let stopped = false;
  partial.stop = async () => {
    if (stopped) return;
    stopped = true;
    await t.close();
  };
  // The meters are registered after the app's start (its migrations made the tables): the first ticks find none.
  await direct.query(
    `INSERT INTO meters (meter_id, address, port) SELECT id, '127.0.0.1', port
       FROM unnest($1::varchar[], $2::int[]) AS m(id, port)`,
    [ids, ports],
  );

  const enqueued: PollResult[] = [];
  const written: PollResult[] = [];
  // Watch the writer from outside: what it is handed and what it writes (writeBatch resolves after the commit).
  const writer = t.writer as unknown as {
    enqueue(result: PollResult): void;
    writeBatch(batch: readonly PollResult[]): Promise<void>;
  };
  const enqueue = writer.enqueue.bind(writer);
  writer.enqueue = (result: PollResult) => {
    enqueued.push(result);
    enqueue(result);
  };
  const writeBatch = writer.writeBatch.bind(writer);
  writer.writeBatch = async (batch: readonly PollResult[]) => {
    await writeBatch(batch);
    written.push(...batch);
  };

  return Object.assign(partial, {
    enqueued,
    written,
    requests: () => ports.reduce((sum, port) => sum + sim.requestsOf(port), 0),
    stored: async () => {
      const { rows } = await direct.query<{ meter_id: string; taken_at: Date }>('SELECT meter_id, taken_at FROM readings');
      return new Set(rows.map((row) => key(row.meter_id, row.taken_at)));
    },
    count: async () => Number((await direct.query<{ n: string }>('SELECT count(*) AS n FROM readings')).rows[0].n),
    health: async () => {
      const response = await t.http().get('/health');
      return { status: response.status, body: response.body as Record<string, unknown> };
    },
    metrics: async () => (await t.http().get('/metrics').expect(200)).text,
  });
}

afterAll(async () => {
  for (const w of worlds) {
    await w.stop?.().catch(() => undefined);
    await w.sim?.stop().catch(() => undefined);
    await w.proxy?.close().catch(() => undefined);
    await w.direct?.end().catch(() => undefined);
    await w.database?.drop().catch(() => undefined);
  }
}, 60_000);

describe('Database outage while polling (SPEC 9, issue 5)', () => {
  it(
    'keeps polling through a two-minute outage, holds every reading and writes them all, in order, with their ' +
      'own taken_at, once the database is back',
    async () => {
      const w = await world('outage_2min', 20, {});
      const { t, proxy, sim, ids } = w;
      const log: string[] = [];

      // Steady state first: two scheduled cycles of every meter stored.
      await waitFor('two cycles stored', async () => (await w.count()) >= 2 * ids.length, 15_000);
      await waitFor('an empty buffer', () => t.writer.stats.buffered === 0, 5000);
      expect((await w.health()).status).toBe(200);

      const okAtCut = t.polling.stats.polls.ok;
      const storedAtCut = await w.count();
      const requestsAtCut = ids.map((id) => sim.requestsOf(Number(id)));
      const skippedAtCut = t.polling.stats.skippedTicks;
      const cutAt = Date.now();
      await proxy.cut();
      log.push(`cut: ${storedAtCut} readings stored, ${okAtCut} polls ok`);

      // The outage is seen at once: /health (readiness) 503 with the database down.
      const seenIn = await waitFor('/health to report the outage', async () => (await w.health()).status === 503, 5000);
      expect((await w.health()).body).toMatchObject({
        status: 'error',
        details: { database: { status: 'down' }, scheduler: { status: 'up' } },
      });
      log.push(`/health 503 after ${seenIn} ms`);

      // Through the outage: polling goes on for every meter, nothing reaches the database, the buffer grows.
      let lastRequests = requestsAtCut;
      let lastBuffered = 0;
      let liveRead: { status: number; ms: number; takenAt: string } | null = null;
      while (Date.now() - cutAt < OUTAGE_MS) {
        await pause(Math.min(10_000, OUTAGE_MS - (Date.now() - cutAt)));
        const requests = ids.map((id) => sim.requestsOf(Number(id)));
        for (const [i, id] of ids.entries()) {
          expect({ meter: id, polledMeanwhile: requests[i] > lastRequests[i] }).toEqual({ meter: id, polledMeanwhile: true });
        }
        lastRequests = requests;
        const health = await w.health();
        expect(health.status).toBe(503);
        expect(health.body).toMatchObject({
          status: 'error',
          details: { database: { status: 'down' }, scheduler: { status: 'up' }, buffer: { status: 'up', dropped: 0 } },
        });
        const buffer = (health.body.details as Record<string, Record<string, unknown>>).buffer;
        expect(buffer.writes_failing_since).toEqual(expect.any(String));
        const buffered = buffer.buffered as number;
        expect(buffered).toBeGreaterThan(lastBuffered);
        lastBuffered = buffered;
        const metrics = await w.metrics();
        expect(sample(metrics, 'reading_write_buffer_results')).toBe(t.writer.stats.buffered);
        expect(sample(metrics, 'reading_write_buffer_dropped_total')).toBe(0);
        expect(sample(metrics, 'reading_write_failures_total')).toBeGreaterThanOrEqual(1);

        if (!liveRead && Date.now() - cutAt > OUTAGE_MS / 2) {
          // A live read still answers: the meter is read now, its reading waits in the buffer.
          const started = Date.now();
          const response = await t.http().get(`/meters/${ids[0]}/data`);
          liveRead = { status: response.status, ms: Date.now() - started, takenAt: response.body.taken_at };
          expect(response.status).toBe(200);
          expect(response.body).toMatchObject({ meter_id: ids[0], energy_kwh: expect.any(Number) });
          expect(liveRead.ms).toBeLessThan(1500);
          // A meter this instance does not poll cannot even be looked up: a clear 503, no 500.
          const unknown = await t.http().get('/meters/not-polled-here/data');
          expect(unknown.status).toBe(503);
          expect(unknown.body).toEqual({
            statusCode: 503,
            error: 'Service Unavailable',
            message: 'the database is unreachable; try again later',
          });
          // Every other request that needs the database gets the same 503 (never a 500).
          for (const path of ['/meters', `/meters/${ids[0]}`, `/meters/${ids[0]}/stats?start_date=01-01-2026&end_date=31-12-2026`]) {
            const answer = await t.http().get(path);
            expect({ path, status: answer.status, body: answer.body }).toEqual({
              path,
              status: 503,
              body: { statusCode: 503, error: 'Service Unavailable', message: 'the database is unreachable; try again later' },
            });
          }
        }
      }
      expect(await w.count()).toBe(storedAtCut);
      const okDuringOutage = t.polling.stats.polls.ok - okAtCut;
      const bufferedAtRestore = t.writer.stats.buffered;
      const failuresAtRestore = t.writer.stats.writeFailures;
      const requestsDuringOutage = ids.map((id, i) => sim.requestsOf(Number(id)) - requestsAtCut[i]);
      log.push(
        `outage ${Math.round((Date.now() - cutAt) / 1000)} s: ${okDuringOutage} polls ok, ${bufferedAtRestore} buffered, ` +
          `${failuresAtRestore} failed write attempts, ${t.polling.stats.skippedTicks - skippedAtCut} ticks skipped, ` +
          `per meter ${Math.min(...requestsDuringOutage)}..${Math.max(...requestsDuringOutage)} polls, live read ${JSON.stringify(liveRead)}`,
      );
      // Once a second for two minutes. A few ticks may be lost to a busy machine (CI runs two suites at once on two
      // cores), not to the database's absence: at most one tick in ten, whereas an outage that stopped polling
      // would lose them all.
      const ticks = OUTAGE_MS / 1000 / INTERVAL_SECONDS;
      for (const n of requestsDuringOutage) expect(n).toBeGreaterThanOrEqual(ticks * 0.9 - 2);
      expect(t.polling.stats.skippedTicks - skippedAtCut).toBeLessThanOrEqual(ticks * 0.1);
      // No connection attempt piles up: retries back off to one every 5 s.
      expect(failuresAtRestore).toBeLessThanOrEqual(OUTAGE_MS / 5000 + 10);
      expect(liveRead).not.toBeNull();

      // Back: the buffer is written within seconds, /health is 200 again.
      const restoredAt = Date.now();
      await proxy.restore();
      const drainedIn = await waitFor('the buffer to be written', () => t.writer.stats.buffered === 0, 15_000);
      await waitFor('/health 200', async () => (await w.health()).status === 200, 5000);
      log.push(`restored: buffer written in ${drainedIn} ms, ${await w.count()} readings stored`);
      // The retry backs off to one every 5 s: the buffer is written at the next retry, plus the write itself.
      expect(drainedIn).toBeLessThan(10_000);
      expect(t.writer.stats.failingSince).toBeNull();

      // Quiet: stop the app (its shutdown writes what is left), then count.
      await waitFor('a cycle after the return', () => t.polling.stats.lastTickAt!.getTime() > restoredAt + 1500, 5000);
      await w.stop();
      const stored = await w.stored();
      const okResults = w.enqueued.filter((result): result is Extract<PollResult, { ok: true }> => result.ok);
      const { ok, failed } = t.polling.stats.polls;
      log.push(`end: ${stored.size} readings stored, ${ok} polls ok, ${failed} failed, ${w.requests()} requests served`);

      // Every request a meter answered is a poll outcome; every ok poll is one stored reading; nothing else is stored.
      expect(ok + failed).toBe(w.requests());
      expect(okResults).toHaveLength(ok);
      expect(stored.size).toBe(ok);
      expect(okResults.filter((result) => !stored.has(key(result.meterId, result.reading.takenAt)))).toEqual([]);
      expect(t.writer.stats.dropped).toBe(0);
      // Written in the order taken: the writes, one after the other, hold exactly the polls' sequence.
      expect(w.written.filter((result) => result.ok)).toEqual(okResults);
      // With their own taken_at: the readings taken during the outage are stored at those times, not at the write.
      const restoredIso = new Date(restoredAt).toISOString();
      const { rows } = await w.direct.query<{ n: string }>(
        'SELECT count(*) AS n FROM readings WHERE taken_at > $1 AND taken_at < $2',
        [new Date(cutAt).toISOString(), restoredIso],
      );
      expect(Number(rows[0].n)).toBe(okResults.filter((r) => r.reading.takenAt > new Date(cutAt) && r.reading.takenAt < new Date(restoredAt)).length);
      expect(Number(rows[0].n)).toBeGreaterThanOrEqual(okDuringOutage - ids.length);
      const live = await w.direct.query('SELECT 1 FROM readings WHERE meter_id = $1 AND taken_at = $2', [ids[0], liveRead!.takenAt]);
      expect(live.rowCount).toBe(1);
      console.log(`[outage] ${log.join('\n[outage] ')}`);
    },
    OUTAGE_MS + 90_000,
  );

  it('keeps polling every interval while the database hangs instead of refusing, and loses nothing', async () => {
    const w = await world('outage_hang', 10, {});
    const { t, proxy, ids } = w;
    await waitFor('a first cycle stored', async () => (await w.count()) >= ids.length, 15_000);
    const requestsAtHang = w.requests();
    const skippedAtHang = t.polling.stats.skippedTicks;
    proxy.hang();
    const hangMs = 15_000;
    await pause(hangMs);
    // One poll of every meter per 1-s interval goes on (a claim waits at most a quarter of the interval).
    const polledDuringHang = w.requests() - requestsAtHang;
    expect(polledDuringHang).toBeGreaterThanOrEqual(ids.length * (hangMs / 1000 - 4));
    expect(t.polling.stats.skippedTicks - skippedAtHang).toBeLessThanOrEqual(4);
    proxy.resume();
    await waitFor('the buffer to be written', () => t.writer.stats.buffered === 0, 45_000);
    await w.stop();
    expect(await w.count()).toBe(t.polling.stats.polls.ok);
    expect(t.writer.stats.dropped).toBe(0);
  }, 120_000);

  it('when the buffer is full, drops the oldest results and counts them, never silently', async () => {
    const bound = 1000; // the smallest POLL_BUFFER_MAX_RESULTS accepted
    const w = await world('outage_full', 50, { POLL_BUFFER_MAX_RESULTS: String(bound) });
    const { t, proxy, ids } = w;
    await waitFor('two cycles stored', async () => (await w.count()) >= 2 * ids.length, 15_000);
    await waitFor('an empty buffer', () => t.writer.stats.buffered === 0, 5000);

    const cutAt = Date.now();
    const enqueuedAtCut = w.enqueued.length;
    await proxy.cut();
    // 50 results a second: full after ~20 s; then keep on for ~15 s more of drops.
    await waitFor('the buffer to overflow', () => t.writer.stats.dropped > 0, 40_000);
    await pause(15_000);

    expect(t.writer.stats.buffered).toBe(bound);
    // Polling goes on while the checks run (50 results a second): each figure the API shows lies between the
    // count read before asking and the count read after.
    const droppedBeforeAsking = t.writer.stats.dropped;
    const health = await w.health();
    const during = await w.metrics();
    const droppedAfterAsking = t.writer.stats.dropped;
    expect(health.status).toBe(503);
    // Readiness names both causes: the database, and the buffer dropping results.
    expect(health.body).toMatchObject({
      status: 'error',
      error: { database: { status: 'down' }, buffer: { status: 'down', buffered: bound, fill_percent: 100 } },
    });
    const shownDropped = (health.body.details as Record<string, Record<string, unknown>>).buffer.dropped;
    for (const shown of [shownDropped, sample(during, 'reading_write_buffer_dropped_total')]) {
      expect(shown).toBeGreaterThanOrEqual(droppedBeforeAsking);
      expect(shown).toBeLessThanOrEqual(droppedAfterAsking);
    }
    expect(sample(during, 'reading_write_buffer_results')).toBe(bound);
    // Every result of the outage is either buffered or counted as dropped (both read at the same moment).
    const droppedBeforeRestore = t.writer.stats.dropped;
    const enqueuedDuringOutage = w.enqueued.length - enqueuedAtCut;
    expect(droppedBeforeRestore + t.writer.stats.buffered).toBe(enqueuedDuringOutage);

    await proxy.restore();
    const drainedIn = await waitFor('the buffer to be written', () => t.writer.stats.buffered === 0, 15_000);
    await w.stop();

    const stored = await w.stored();
    // Drops go on until the first write after the return succeeds (within the backoff's 5 s).
    const dropped = t.writer.stats.dropped;
    expect(dropped).toBeGreaterThanOrEqual(droppedBeforeRestore);
    expect(dropped).toBeLessThanOrEqual(droppedBeforeRestore + (drainedIn / 1000 + 2) * ids.length);
    // What is missing is exactly one run of `dropped` consecutive results: the oldest of the outage.
    const isStored = (result: PollResult) => !result.ok || stored.has(key(result.meterId, result.reading.takenAt));
    const firstMissing = w.enqueued.findIndex((result) => !isStored(result));
    expect(firstMissing).toBeGreaterThanOrEqual(enqueuedAtCut - ids.length); // at most a batch taken just before the cut
    expect(firstMissing).toBeLessThanOrEqual(enqueuedAtCut + ids.length);
    const missing = w.enqueued.slice(firstMissing, firstMissing + dropped);
    expect(missing.filter(isStored)).toEqual([]);
    expect(w.enqueued.slice(0, firstMissing).filter((result) => !isStored(result))).toEqual([]);
    expect(w.enqueued.slice(firstMissing + dropped).filter((result) => !isStored(result))).toEqual([]);
    expect(stored.size).toBe(w.enqueued.filter((result) => result.ok).length - missing.filter((r) => r.ok).length);
    expect(t.polling.stats.polls.ok + t.polling.stats.polls.failed).toBe(w.requests());
    // The survivors were written in their order.
    expect(w.written.filter((result) => result.ok)).toEqual(
      [...w.enqueued.slice(0, firstMissing), ...w.enqueued.slice(firstMissing + dropped)].filter((result) => result.ok),
    );
    console.log(
      `[outage] full buffer: outage ${Math.round((Date.now() - cutAt) / 1000)} s, ${enqueuedDuringOutage} results ` +
        `during it, ${dropped} dropped (oldest), ${bound} kept and written in ${drainedIn} ms, ${stored.size} stored`,
    );
  }, 120_000);
});
