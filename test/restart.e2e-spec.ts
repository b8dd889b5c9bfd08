import { Client } from 'pg';
import { Simulator, startSimulator } from '../tools/meter-simulator/simulator';
import { createTestDatabase, TestDatabase } from './setup/test-database';
import { freePorts } from './support/ports';
import { exitWithin, killStartedServices, ServiceProcess, startService, waitUntilHealthy } from './support/service-process';
import { startTcpProxy, TcpProxy } from './support/tcp-proxy';

/**
 * Stopping and killing the real process while it polls (SPEC 8 SIGTERM, SPEC 9 no lost reading). Every reading
 * stored is counted against the requests the meters answered. The service reaches PostgreSQL through a TCP proxy
 * the test can cut, so that the last scenarios stop it while the database is away.
 */

const METERS = 12;
/** Every meter answers after 600 ms: at any moment of a cycle some polls are in flight. */
const METER_DELAY_MS = 600;
const GRACE_MS = 3000;
/** SHUTDOWN_FLUSH_BUDGET_MS in polling.service.ts: how long the last write is retried at shutdown. */
const FLUSH_BUDGET_MS = 5000;
const ENV = {
  POLLING_ENABLED: 'true',
  POLL_INTERVAL_SECONDS: '3',
  POLL_TIMEOUT_MS: '1500',
  POLL_SCHEDULE: 'spread',
  SHUTDOWN_GRACE_MS: String(GRACE_MS),
};

let database: TestDatabase;
let direct: Client;
let proxy: TcpProxy;
let sim: Simulator;
let ports: number[];
let ids: string[];
/** Readings lost by the SIGKILL and by the stop without a database: every other answered request is stored. */
let lost = 0;

const totalRequests = () => ports.reduce((sum, port) => sum + sim.requestsOf(port), 0);
const pause = (ms: number) => new Promise((wake) => setTimeout(wake, ms));

async function storedPerMeter(): Promise<Map<string, number>> {
  const { rows } = await direct.query<{ meter_id: string; n: string }>(
    'SELECT meter_id, count(*) AS n FROM readings GROUP BY meter_id',
  );
  return new Map(rows.map((row) => [row.meter_id, Number(row.n)]));
}

async function storedTotal(): Promise<number> {
  return Number((await direct.query<{ n: string }>('SELECT count(*) AS n FROM readings')).rows[0].n);
}

async function start(): Promise<ServiceProcess> {
  const [port] = await freePorts(1);
  const service = startService(port, { ...ENV, DATABASE_URL: proxy.urlThrough(database.url) });
  await waitUntilHealthy(service);
  return service;
}

/** Waits until every meter has at least `n` more readings stored than in `since`. */
async function waitForReadings(since: Map<string, number>, n: number, service: ServiceProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const now = await storedPerMeter();
    if (ids.every((id) => (now.get(id) ?? 0) >= (since.get(id) ?? 0) + n)) return;
    if (Date.now() > deadline) throw new Error(`no ${n} new readings of every meter within 30 s\n${service.tail()}`);
    await pause(200);
  }
}

/**
 * Sends `signal` right after a meter received a request: that poll is then in flight (its answer comes
 * METER_DELAY_MS later) and the cycle is under way. Returns the requests counted at that moment and the time.
 */
async function signalMidCycle(service: ServiceProcess, signal: NodeJS.Signals): Promise<{ at: number; requests: number }> {
  const deadline = Date.now() + 10_000;
  let last = totalRequests();
  for (;;) {
    await new Promise((wake) => setImmediate(wake));
    const now = totalRequests();
    if (now > last) {
      const at = Date.now();
      service.child.kill(signal);
      return { at, requests: now };
    }
    last = now;
    if (Date.now() > deadline) throw new Error(`no poll within 10 s\n${service.tail()}`);
  }
}

beforeAll(async () => {
  database = await createTestDatabase('restart');
  direct = new Client({ connectionString: database.url });
  await direct.connect();
  const target = new URL(database.url);
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  ports = await freePorts(METERS);
  ids = ports.map(String);
  sim = await startSimulator({ ports });
  expect(sim.failedPorts).toEqual([]);
  for (const port of ports) sim.setFault(port, { kind: 'slow', delayMs: METER_DELAY_MS });
});

afterAll(async () => {
  killStartedServices();
  await sim?.stop();
  await proxy?.close();
  await direct?.end().catch(() => undefined);
  await database?.drop();
}, 30_000);

describe('Stopping the polling service (SPEC 8 SIGTERM, SPEC 9, issue 5)', () => {
  it('SIGTERM in the middle of a cycle: no new polls, every reading taken is written, exit 0 within the deadline', async () => {
    const service = await start();
    // The first start made the tables; the meters come now, the next tick claims them.
    await direct.query(
      `INSERT INTO meters (meter_id, address, port) SELECT id, '127.0.0.1', port
         FROM unnest($1::varchar[], $2::int[]) AS m(id, port)`,
      [ids, ports],
    );
    await waitForReadings(new Map(), 2, service);

    const sent = await signalMidCycle(service, 'SIGTERM');
    const exit = await exitWithin(service, GRACE_MS + FLUSH_BUDGET_MS + 10_000, 'exit after SIGTERM');
    const tookMs = Date.now() - sent.at;

    expect({ exit, output: exit.code === 0 ? '' : service.tail() }).toEqual({ exit: { code: 0, signal: null }, output: '' });
    // Polls in flight answer within 600 ms; nothing waits for the grace period to run out.
    expect(tookMs).toBeLessThan(GRACE_MS);
    const requests = totalRequests();
    // No new work after the signal (one poll may have been on its way as the signal was sent).
    expect(requests - sent.requests).toBeLessThanOrEqual(1);
    // Every request the meters answered is a stored reading, the one in flight at the signal included.
    expect(await storedTotal()).toBe(requests);
    const { rows } = await direct.query<{ n: string }>('SELECT count(*) AS n FROM readings WHERE taken_at > $1', [
      new Date(sent.at).toISOString(),
    ]);
    expect(Number(rows[0].n)).toBeGreaterThanOrEqual(1);
    expect(service.output()).toContain('every poll result written');
    console.log(
      `[restart] SIGTERM mid-cycle: exit 0 after ${tookMs} ms, ${requests} requests answered, ${await storedTotal()} ` +
        `readings stored (${rows[0].n} taken after the signal), ${requests - sent.requests} requests after it`,
    );
  }, 90_000);

  it('SIGKILL loses at most the last moments (buffered or in flight), and the next start carries on', async () => {
    const service = await start();
    await waitForReadings(await storedPerMeter(), 2, service);

    // Requests answered per meter, sampled, to know what each meter had answered a while before the kill.
    const samples: { at: number; counts: number[] }[] = [];
    const sampler = setInterval(() => samples.push({ at: Date.now(), counts: ports.map((p) => sim.requestsOf(p)) }), 50);
    await pause(4000);
    const sent = await signalMidCycle(service, 'SIGKILL');
    clearInterval(sampler);
    expect(await exitWithin(service, 5000, 'exit after SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });

    const requests = totalRequests();
    const stored = await storedPerMeter();
    const storedNow = await storedTotal();
    // Results are written at least once a second: what a meter had answered 2.5 s before the kill is stored.
    const settled = samples.filter((s) => s.at <= sent.at - 2500).pop()!;
    const recent = samples[samples.length - 1];
    for (const [i, id] of ids.entries()) {
      const have = stored.get(id) ?? 0;
      expect({ meter: id, stored: have >= settled.counts[i] }).toEqual({ meter: id, stored: true });
      expect({ meter: id, notMoreThanAnswered: have <= sim.requestsOf(ports[i]) }).toEqual({ meter: id, notMoreThanAnswered: true });
    }
    const killedLost = requests - storedNow;
    const inLastWindow = recent.counts.reduce((a, b) => a + b, 0) - settled.counts.reduce((a, b) => a + b, 0);
    expect(killedLost).toBeGreaterThanOrEqual(0);
    expect(killedLost).toBeLessThanOrEqual(inLastWindow + (requests - sent.requests) + 1);
    lost += killedLost;

    // The next start carries on: polling resumes (the dead process's claims run out within an interval), and a
    // SIGTERM then writes everything again.
    const restartedAt = Date.now();
    const next = await start();
    const healthyMs = Date.now() - restartedAt;
    await waitForReadings(stored, 1, next);
    const resumedMs = Date.now() - restartedAt - healthyMs;
    await waitForReadings(stored, 2, next);
    next.child.kill('SIGTERM');
    expect(await exitWithin(next, GRACE_MS + FLUSH_BUDGET_MS + 10_000, 'exit after SIGTERM')).toEqual({ code: 0, signal: null });
    expect(await storedTotal()).toBe(totalRequests() - lost);
    console.log(
      `[restart] SIGKILL mid-cycle: ${requests} requests answered, ${storedNow} readings stored, ${killedLost} lost ` +
        `(${inLastWindow} answered in the last 2.5 s); next start healthy after ${healthyMs} ms, every meter read ` +
        `again ${resumedMs} ms later, ` +
        `then SIGTERM: ${await storedTotal()} stored of ${totalRequests()} answered`,
    );
  }, 120_000);

  it('SIGTERM while the database is away: retries the write, logs what it could not write, exits 1 in time', async () => {
    const service = await start();
    await waitForReadings(await storedPerMeter(), 1, service);
    await pause(1200); // the 1-s flush has written what came before the cut
    const storedBefore = await storedTotal();
    await proxy.cut();
    await pause(4000); // a cycle and more of readings held in the buffer

    const sentAt = Date.now();
    service.child.kill('SIGTERM');
    const exit = await exitWithin(service, GRACE_MS + FLUSH_BUDGET_MS + 10_000, 'exit after SIGTERM without database');
    const tookMs = Date.now() - sentAt;
    await proxy.restore();

    expect({ exit, output: exit.code === 1 ? '' : service.tail() }).toEqual({ exit: { code: 1, signal: null }, output: '' });
    expect(tookMs).toBeLessThan(GRACE_MS + FLUSH_BUDGET_MS + 3000);
    const reported = /exiting with code 1: (\d+) readings could not be written/.exec(service.output());
    expect(reported).not.toBeNull();
    expect(service.output()).toMatch(/\d+ poll results \(\d+ readings\) could not be written at shutdown/);
    const lostNow = Number(reported![1]);
    expect(lostNow).toBeGreaterThan(0);
    // The log tells the truth: what it reports lost is exactly what is missing.
    const storedAfter = await storedTotal();
    expect(storedAfter - storedBefore + lostNow).toBe(totalRequests() - storedBefore - lost);
    lost += lostNow;
    console.log(
      `[restart] SIGTERM without database: exit 1 after ${tookMs} ms, ${lostNow} readings reported lost, ` +
        `${storedAfter} stored of ${totalRequests()} answered (${lost} lost in all)`,
    );
  }, 90_000);

  it('SIGTERM while the database is away for a moment: the retried write succeeds, exit 0', async () => {
    const service = await start();
    await waitForReadings(await storedPerMeter(), 1, service);
    await proxy.cut();
    await pause(3000);

    const sentAt = Date.now();
    service.child.kill('SIGTERM');
    // The database comes back while the shutdown retries its write.
    await pause(GRACE_MS > 2000 ? 2000 : GRACE_MS);
    await proxy.restore();
    const exit = await exitWithin(service, GRACE_MS + FLUSH_BUDGET_MS + 10_000, 'exit after SIGTERM');
    const tookMs = Date.now() - sentAt;

    expect({ exit, output: exit.code === 0 ? '' : service.tail() }).toEqual({ exit: { code: 0, signal: null }, output: '' });
    expect(await storedTotal()).toBe(totalRequests() - lost);
    console.log(`[restart] SIGTERM during a short outage: exit 0 after ${tookMs} ms, nothing more lost`);
  }, 90_000);
  it('SIGTERM while the database hangs with nothing left to write: exit 0 at once, not the code of lost readings', async () => {
    // Nothing is polled: whatever the stop waits for, it is not a reading.
    await direct.query('UPDATE meters SET enabled = false');
    const service = await start();
    proxy.hang();
    try {
      // A tick's claim is now stuck in a pool connection (abandoned at its deadline; the query is not): the stop
      // must not wait for it, nor count it as a loss.
      await pause(4000);
      const sentAt = Date.now();
      service.child.kill('SIGTERM');
      const exit = await exitWithin(service, GRACE_MS + FLUSH_BUDGET_MS + 15_000, 'exit after SIGTERM with a hung database');
      const tookMs = Date.now() - sentAt;
      expect({ exit, output: exit.code === 0 ? '' : service.tail() }).toEqual({ exit: { code: 0, signal: null }, output: '' });
      expect(service.output()).not.toMatch(/could not be written/);
      expect(tookMs).toBeLessThan(GRACE_MS + FLUSH_BUDGET_MS);
      console.log(`[restart] SIGTERM with a hung database and nothing to write: exit 0 after ${tookMs} ms`);
    } finally {
      proxy.resume();
      await direct.query('UPDATE meters SET enabled = true');
    }
  }, 90_000);
});
