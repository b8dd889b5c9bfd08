import type { PollResult } from '../src/polling/meter-client';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { insertMeter, insertReadings } from './support/factories';
import { freePorts } from './support/ports';
import { createTestApp, TestApp } from './support/test-app';

/**
 * Concurrency on one meter (issue 5, item 7): creates, patches, deletes and reads racing each other leave a
 * consistent state and never a 5xx. A PATCH racing a DELETE answers 200 or 404; at the end the meter exists with
 * one consistent row, or not at all, and no reading outlives its meter.
 *
 * A meter deleted while its poll is in flight stores nothing: that is test/polling.e2e-spec.ts, "stores nothing
 * for a meter deleted while its poll is in flight" (not repeated here).
 */

interface Answer {
  kind: string;
  status: number;
  body: unknown;
}

interface Call {
  kind: 'create' | 'bulk' | 'patch' | 'move' | 'delete' | 'get' | 'stats';
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  body?: unknown;
}

/** What each kind of request may answer in a race; anything else (a 5xx above all) is a failure. */
const ALLOWED: Record<Call['kind'], number[]> = {
  create: [201, 409],
  bulk: [200],
  patch: [200, 404],
  move: [200, 404, 409],
  delete: [204, 404],
  get: [200, 404],
  stats: [200, 404],
};

/** A deterministic shuffle (the same order every run, so a failure can be replayed). */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('Races on one meter (issue 5.7)', () => {
  let t: TestApp;
  let pool: Pool;
  let deadPorts: number[];

  beforeAll(async () => {
    t = await createTestApp('races');
    const server = t.app.getHttpServer();
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', () => listening()));
    // Enough connections that all hundred requests are in flight at once.
    pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 100 });
    // Ports nothing listens on: no request here reads a meter, but an address must be a real one.
    deadPorts = await freePorts(12);
  });
  afterAll(async () => {
    await pool?.close();
    await t?.close();
  });

  async function send(call: Call): Promise<Answer> {
    const response = await pool.request({
      method: call.method,
      path: call.path,
      headers: call.body === undefined ? {} : { 'content-type': 'application/json' },
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
    });
    const text = await response.body.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { kind: call.kind, status: response.statusCode, body };
  }

  function expectAllowed(answers: Answer[]): void {
    const unexpected = answers.filter((answer) => !ALLOWED[answer.kind as Call['kind']].includes(answer.status));
    expect(unexpected).toEqual([]);
    for (const answer of answers.filter((a) => a.status >= 400)) {
      expect(answer.body).toEqual({ statusCode: answer.status, error: expect.any(String), message: expect.any(String) });
    }
  }

  async function meterRows(meterId: string): Promise<Record<string, unknown>[]> {
    return t.dataSource.query('SELECT * FROM meters WHERE meter_id = $1', [meterId]);
  }

  async function orphanReadings(): Promise<number> {
    const [{ count }] = await t.dataSource.query(
      'SELECT count(*) AS count FROM readings r WHERE NOT EXISTS (SELECT 1 FROM meters m WHERE m.meter_id = r.meter_id)',
    );
    return Number(count);
  }

  /** A hundred requests of every kind on one meter id, in a fixed shuffled order, all in flight together. */
  function mixedCalls(meterId: string, seed: number, ports: number[]): Call[] {
    const [port] = ports;
    const calls: Call[] = [];
    for (let i = 0; i < 15; i++) calls.push({ kind: 'create', method: 'POST', path: '/meters', body: { meter_id: meterId, address: '127.0.0.1', port, name: `created-${i}` } });
    for (let i = 0; i < 5; i++) calls.push({ kind: 'bulk', method: 'POST', path: '/meters/bulk', body: [{ meter_id: meterId, address: '127.0.0.1', port, name: `bulk-${i}` }] });
    for (let i = 0; i < 25; i++) calls.push({ kind: 'patch', method: 'PATCH', path: `/meters/${meterId}`, body: { name: `patched-${i}`, enabled: i % 2 === 0 } });
    for (let i = 0; i < 10; i++) calls.push({ kind: 'move', method: 'PATCH', path: `/meters/${meterId}/`, body: { port: ports[i % 2] } });
    for (let i = 0; i < 15; i++) calls.push({ kind: 'delete', method: 'DELETE', path: `/meters/${meterId}` });
    for (let i = 0; i < 20; i++) calls.push({ kind: 'get', method: 'GET', path: `/meters/${meterId}` });
    for (let i = 0; i < 10; i++) calls.push({ kind: 'stats', method: 'GET', path: `/meters/${meterId}/stats?start_date=01-01-2024&end_date=31-12-2030` });
    return shuffled(calls, seed);
  }

  it.each([
    ['exists at the start', true, 1],
    ['is absent at the start', false, 2],
    ['exists at the start (another order)', true, 3],
    ['is absent at the start (another order)', false, 4],
  ])(
    'a hundred concurrent creates, patches, deletes and reads of a meter that %s: no 5xx, a consistent end',
    async (_name, existsAtStart, seed) => {
      const meterId = `race-${seed}`;
      // Two ports of its own: the meter is created at the first and moved between both.
      const ports = deadPorts.slice(2 * seed - 2, 2 * seed);
      if (existsAtStart) {
        await insertMeter(t.dataSource, { meter_id: meterId, port: ports[0] });
        await insertReadings(t.dataSource, meterId, [['2025-01-01T00:00:00Z', 10], ['2025-01-01T01:00:00Z', 11]]);
      }
      const calls = mixedCalls(meterId, seed, ports);
      expect(calls).toHaveLength(100);
      const answers = await Promise.all(calls.map(send));
      expectAllowed(answers);

      // Every create succeeded on an absent meter and every delete on a present one, so they alternate:
      // present at the start + created - deleted = present at the end (0 or 1), whatever the interleaving.
      const created =
        answers.filter((a) => a.kind === 'create' && a.status === 201).length +
        answers.filter((a) => a.kind === 'bulk' && (a.body as { created: string[] }).created.includes(meterId)).length;
      const deleted = answers.filter((a) => a.kind === 'delete' && a.status === 204).length;
      const rows = await meterRows(meterId);
      expect(rows.length).toBeLessThanOrEqual(1);
      expect((existsAtStart ? 1 : 0) + created - deleted).toBe(rows.length);

      const final = await send({ kind: 'get', method: 'GET', path: `/meters/${meterId}` });
      if (rows.length === 0) {
        expect(final.status).toBe(404);
        expect(await t.dataSource.query('SELECT 1 FROM readings WHERE meter_id = $1', [meterId])).toEqual([]);
      } else {
        // One consistent row: its fields are values some request sent, and the API shows exactly the row.
        const row = rows[0];
        expect(final.status).toBe(200);
        const meter = final.body as { name: string | null; port: number; enabled: boolean; address: string };
        expect(meter).toMatchObject({ meter_id: meterId, address: '127.0.0.1', port: row.port, name: row.name, enabled: row.enabled });
        expect(ports).toContain(meter.port);
        expect(meter.name === null || /^(created|bulk|patched)-\d+$/.test(meter.name)).toBe(true);
        expect((row.updated_at as Date).getTime()).toBeGreaterThanOrEqual((row.created_at as Date).getTime());
      }
      expect(await orphanReadings()).toBe(0);
    },
  );

  it('answers 200 or 404 to patches racing a delete, and leaves no meter and no reading', async () => {
    const meterId = 'race-patch-delete';
    await insertMeter(t.dataSource, { meter_id: meterId, port: deadPorts[8] });
    await insertReadings(t.dataSource, meterId, [['2025-02-01T00:00:00Z', 1]]);
    const calls: Call[] = Array.from({ length: 99 }, (_, i) => ({
      kind: 'patch' as const,
      method: 'PATCH' as const,
      path: `/meters/${meterId}`,
      body: i % 3 === 0 ? { enabled: false } : { name: `n-${i}` },
    }));
    calls.splice(40, 0, { kind: 'delete', method: 'DELETE', path: `/meters/${meterId}` });
    const answers = await Promise.all(calls.map(send));
    expectAllowed(answers);
    expect(answers.filter((a) => a.kind === 'delete').map((a) => a.status)).toEqual([204]);
    expect(await meterRows(meterId)).toEqual([]);
    expect(await orphanReadings()).toBe(0);
  });

  it('lets two meters trade ports concurrently with 200 or 409, never 500 and never one address and port twice', async () => {
    const [portA, portB] = deadPorts.slice(9, 11);
    await insertMeter(t.dataSource, { meter_id: 'trade-a', port: portA });
    await insertMeter(t.dataSource, { meter_id: 'trade-b', port: portB });
    for (let round = 0; round < 10; round++) {
      const calls: Call[] = [];
      for (let i = 0; i < 10; i++) {
        calls.push({ kind: 'move', method: 'PATCH', path: '/meters/trade-a', body: { port: i % 2 === 0 ? portB : portA } });
        calls.push({ kind: 'move', method: 'PATCH', path: '/meters/trade-b', body: { port: i % 2 === 0 ? portA : portB } });
      }
      expectAllowed(await Promise.all(calls.map(send)));
      const rows: { port: number }[] = await t.dataSource.query(
        "SELECT port FROM meters WHERE meter_id IN ('trade-a', 'trade-b') ORDER BY meter_id",
      );
      expect(rows).toHaveLength(2);
      expect(rows[0].port).not.toBe(rows[1].port);
    }
  });

  it('registers overlapping bulk requests sent at once in different orders: each meter once, never a 500', async () => {
    const ports = await freePorts(40);
    const rows = ports.map((port, i) => ({ meter_id: `bulk-race-${i}`, address: '127.0.0.1', port }));
    // Some requests take ids in one order and addresses in another: every pair of them can wait on each other.
    const crossed = rows.map((row, i) => ({ ...row, port: ports[ports.length - 1 - i] }));
    const bodies = Array.from({ length: 12 }, (_, i) => {
      const base = i % 3 === 2 ? crossed : rows;
      return shuffled(base, i + 100);
    });
    const answers = await Promise.all(
      bodies.map((body) => send({ kind: 'bulk', method: 'POST', path: '/meters/bulk', body })),
    );
    expectAllowed(answers);
    const created = answers.flatMap((answer) => (answer.body as { created: string[] }).created);
    expect([...created].sort()).toEqual(rows.map((row) => row.meter_id).sort());
    const stored: { count: string }[] = await t.dataSource.query("SELECT count(*) AS count FROM meters WHERE meter_id LIKE 'bulk-race-%'");
    expect(Number(stored[0].count)).toBe(rows.length);
  });

  it('writes readings while the meter is created and deleted over and over, and leaves none without its meter', async () => {
    const meterId = 'race-readings';
    const port = deadPorts[11];
    let taken = Date.parse('2026-01-01T00:00:00Z');
    const failuresBefore = t.writer.stats.writeFailures;
    let present = 0;
    for (let round = 0; round < 5; round++) {
      const writes = Array.from({ length: 30 }, () => {
        taken += 1000;
        return t.writer.writeNow({
          ok: true,
          meterId,
          attemptedAt: new Date(taken),
          durationMs: 1,
          reading: { meterId, takenAt: new Date(taken), currentA: '1', energyKwh: String(taken / 1000) },
        });
      });
      const calls = shuffled(
        [
          ...Array.from({ length: 20 }, (_, i): Call => ({ kind: 'create', method: 'POST', path: '/meters', body: { meter_id: meterId, address: '127.0.0.1', port, name: `r-${i}` } })),
          ...Array.from({ length: 20 }, (): Call => ({ kind: 'delete', method: 'DELETE', path: `/meters/${meterId}` })),
          ...Array.from({ length: 10 }, (): Call => ({ kind: 'get', method: 'GET', path: `/meters/${meterId}` })),
        ],
        round + 10,
      );
      const [answers, written] = await Promise.all([Promise.all(calls.map(send)), Promise.all(writes)]);
      expectAllowed(answers);
      // Every write went through (a reading for an absent meter is skipped, not an error).
      expect(written.every(Boolean)).toBe(true);
      expect(await orphanReadings()).toBe(0);
      const rows = await meterRows(meterId);
      const created = answers.filter((a) => a.kind === 'create' && a.status === 201).length;
      const deleted = answers.filter((a) => a.kind === 'delete' && a.status === 204).length;
      expect(rows.length).toBe(present + created - deleted);
      present = rows.length;
    }
    expect(t.writer.stats.writeFailures).toBe(failuresBefore);
  });
  it('stores no reading and no health from a read made before the meter was registered again elsewhere', async () => {
    // A read in flight while its meter is deleted and registered again under the same id at another port (a break
    // test stored the old meter's reading, and its health, on the new one).
    const [oldPort, newPort] = await freePorts(2);
    const meterId = 'race-moved';
    await insertMeter(t.dataSource, { meter_id: meterId, port: oldPort });
    const attemptedAt = new Date();
    const readAt = (port: number, energyKwh: string): PollResult => ({
      ok: true,
      meterId,
      attemptedAt,
      durationMs: 5,
      source: { address: '127.0.0.1', port },
      reading: { meterId, takenAt: new Date(), currentA: '1', energyKwh, source: { address: '127.0.0.1', port } },
    });
    const stale = readAt(oldPort, '777');
    await send({ kind: 'delete', method: 'DELETE', path: `/meters/${meterId}` });
    await send({ kind: 'create', method: 'POST', path: '/meters', body: { meter_id: meterId, address: '127.0.0.1', port: newPort } });
    t.writer.enqueue(stale);
    // The control: a read at the meter's current address, taken a moment later, is stored.
    await new Promise((wake) => setTimeout(wake, 5));
    const current = readAt(newPort, '5');
    t.writer.enqueue(current);
    await t.writer.flush();

    const stored = await t.dataSource.query('SELECT trim_scale(energy_kwh)::text AS kwh FROM readings WHERE meter_id = $1', [meterId]);
    expect(stored).toEqual([{ kwh: '5' }]);
    const meter = (await send({ kind: 'get', method: 'GET', path: `/meters/${meterId}` })).body as { port: number; health: unknown };
    expect(meter).toMatchObject({ port: newPort, health: { state: 'up' } });
    const [row] = await meterRows(meterId);
    expect((row.last_energy_kwh as string).replace(/\.?0+$/, '')).toBe('5');
  });
});
