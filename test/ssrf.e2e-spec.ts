import * as net from 'node:net';
import { Fault, HOSTILE_MARKER, Simulator, startSimulator } from '../tools/meter-simulator/simulator';
import { createTestDatabase, TestDatabase } from './setup/test-database';
import { countReadings, insertMeter } from './support/factories';
import { freePorts } from './support/ports';
import { createTestApp, TestApp } from './support/test-app';

/**
 * SPEC 2 (the SSRF guard) in depth: an address outside METER_ALLOWED_NETWORKS is refused at every door (create,
 * patch, bulk, discovery) and again before every request; link-local, cloud metadata and unspecified addresses are
 * refused whatever the allowed networks say, in every spelling; redirects are never followed; a meter's body never
 * comes back out.
 *
 * Every request this file can cause goes to loopback: where an address that must never be reached is polled, the URL
 * template pins the connection to a loopback simulator, so a guard that failed would show up as a connection there
 * rather than as traffic to the address itself.
 */

const WIDE = '0.0.0.0/0,::/0';

/** Never polled, whatever METER_ALLOWED_NETWORKS says: [address as sent, canonical form]. */
const NEVER: ReadonlyArray<readonly [string, string]> = [
  ['169.254.169.254', '169.254.169.254'], // AWS, GCP, Azure, OpenStack metadata
  ['169.254.0.1', '169.254.0.1'],
  ['fd00:ec2::254', 'fd00:ec2::254'], // AWS metadata over IPv6
  ['FD00:EC2:0:0:0:0:0:254', 'fd00:ec2::254'],
  ['::ffff:169.254.169.254', '169.254.169.254'],
  ['::ffff:a9fe:a9fe', '169.254.169.254'],
  ['0:0:0:0:0:ffff:169.254.169.254', '169.254.169.254'],
  ['64:ff9b::169.254.169.254', '64:ff9b::a9fe:a9fe'], // NAT64
  ['::169.254.169.254', '::a9fe:a9fe'], // IPv4-compatible
  ['fe80::1', 'fe80::1'],
  ['FE80::A9FE:A9FE', 'fe80::a9fe:a9fe'],
  ['febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff'], // top of fe80::/10
  ['0.0.0.0', '0.0.0.0'],
  ['::ffff:0.0.0.0', '0.0.0.0'],
  ['::', '::'],
  ['0:0:0:0:0:0:0:0', '::'],
];

/** Refused because they are not IP literals (some would be read as 127.0.0.1 by a lenient parser). */
const NOT_LITERALS = ['localhost', '127.1', '2130706433', '0x7f.0.0.1', '0177.0.0.1', '[::1]', 'fe80::1%lo', '127.0.0.1:80'];

interface BulkResult {
  created: string[];
  refused: { row: number; meter_id: string | null; reasons: string[] }[];
}

describe('SSRF guard (SPEC 2, 3, 5.1)', () => {
  describe('at every door, with METER_ALLOWED_NETWORKS=127.0.0.0/8,::1/128', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp('ssrf-doors', { METER_ALLOWED_NETWORKS: '127.0.0.0/8,::1/128' });
      await t.http().post('/meters').send({ meter_id: 'door-1', address: '127.0.0.1', port: 5001 }).expect(201);
    });
    afterAll(async () => {
      await t?.close();
    });

    const OUTSIDE = ['10.0.0.1', '192.168.1.10', '8.8.8.8', 'fd12::1', '2001:db8::1', '::ffff:10.0.0.1', '128.0.0.1'];

    it.each(OUTSIDE)('create: %s is refused with 400 and the reason, nothing registered', async (address) => {
      const response = await t.http().post('/meters').send({ meter_id: 'out-1', address, port: 80 }).expect(400);
      expect(response.body).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        message: expect.stringContaining('outside the allowed meter networks (127.0.0.0/8, ::1/128)'),
      });
      await t.http().get('/meters/out-1').expect(404);
    });

    it.each(OUTSIDE)('patch: moving a meter to %s is refused, the meter stays where it was', async (address) => {
      const response = await t.http().patch('/meters/door-1').send({ address }).expect(400);
      expect(response.body.message).toContain('outside the allowed meter networks');
      expect((await t.http().get('/meters/door-1').expect(200)).body).toMatchObject({ address: '127.0.0.1', port: 5001 });
    });

    it('bulk: every row outside is refused with its reason, the rows inside are registered', async () => {
      const rows = [
        ...OUTSIDE.map((address, i) => ({ meter_id: `bulk-out-${i}`, address, port: 80 })),
        { meter_id: 'bulk-in-1', address: '127.0.0.9', port: 5002 },
        { meter_id: 'bulk-in-2', address: '0:0:0:0:0:0:0:1', port: 5003 },
      ];
      const result = (await t.http().post('/meters/bulk').send(rows).expect(200)).body as BulkResult;
      expect(result.created.sort()).toEqual(['bulk-in-1', 'bulk-in-2']);
      expect(result.refused.map((r) => r.row)).toEqual(OUTSIDE.map((_, i) => i));
      for (const refused of result.refused) expect(refused.reasons.join(' ')).toContain('outside the allowed meter networks');
      // Stored in canonical form.
      expect((await t.http().get('/meters/bulk-in-2').expect(200)).body.address).toBe('::1');
    });

    it.each(OUTSIDE)('discovery: a scan of %s is refused before it starts', async (address) => {
      const before = (await t.http().get('/discovery').expect(200)).body.length;
      const response = await t.http().post('/discovery').send({ address, port_from: 80, port_to: 81 }).expect(400);
      expect(response.body.message).toContain('outside the allowed meter networks');
      expect((await t.http().get('/discovery').expect(200)).body.length).toBe(before);
    });

    it('odd spellings of an allowed address are one address: 409 for the same address and port', async () => {
      await t.http().post('/meters').send({ meter_id: 'odd-1', address: '::ffff:7f00:1', port: 5004 }).expect(201);
      expect((await t.http().get('/meters/odd-1').expect(200)).body.address).toBe('127.0.0.1');
      for (const address of ['127.0.0.1', '::ffff:127.0.0.1', '0:0:0:0:0:ffff:7f00:0001']) {
        await t.http().post('/meters').send({ meter_id: 'odd-2', address, port: 5004 }).expect(409);
      }
    });
  });

  describe(`link-local, metadata and unspecified addresses, with METER_ALLOWED_NETWORKS=${WIDE}`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp('ssrf-never', { METER_ALLOWED_NETWORKS: WIDE });
      await t.http().post('/meters').send({ meter_id: 'wide-1', address: '127.0.0.1', port: 5101 }).expect(201);
    });
    afterAll(async () => {
      await t?.close();
    });

    it('the wide allowance is in force: an address outside the default networks is accepted (and never polled here)', async () => {
      // 198.51.100.0/24 is reserved for documentation: nothing there, and this test sends nothing anyway.
      await t.http().post('/meters').send({ meter_id: 'wide-doc', address: '198.51.100.7', port: 80 }).expect(201);
      await t.http().delete('/meters/wide-doc').expect(204);
    });

    it.each(NEVER)('%s is refused at create, patch, bulk and discovery (as %s)', async (address, canonical) => {
      const create = await t.http().post('/meters').send({ meter_id: 'never-1', address, port: 80 }).expect(400);
      expect(create.body.message).toContain(canonical);
      expect(create.body.message).toContain('link-local or unspecified');
      await t.http().get('/meters/never-1').expect(404);

      const patch = await t.http().patch('/meters/wide-1').send({ address }).expect(400);
      expect(patch.body.message).toContain('link-local or unspecified');
      expect((await t.http().get('/meters/wide-1').expect(200)).body.address).toBe('127.0.0.1');

      const bulk = (await t.http().post('/meters/bulk').send([{ meter_id: 'never-2', address, port: 80 }]).expect(200))
        .body as BulkResult;
      expect(bulk.created).toEqual([]);
      expect(bulk.refused).toEqual([{ row: 0, meter_id: 'never-2', reasons: [expect.stringContaining('link-local')] }]);

      const scan = await t.http().post('/discovery').send({ address, port_from: 80, port_to: 80 }).expect(400);
      expect(scan.body.message).toContain('link-local or unspecified');
    });

    it.each(NOT_LITERALS)('%p is not an IP literal and is refused at every door', async (address) => {
      const create = await t.http().post('/meters').send({ meter_id: 'lit-1', address, port: 80 }).expect(400);
      expect(JSON.stringify(create.body.message)).toContain('literal');
      await t.http().patch('/meters/wide-1').send({ address }).expect(400);
      const bulk = (await t.http().post('/meters/bulk').send([{ meter_id: 'lit-2', address, port: 80 }]).expect(200))
        .body as BulkResult;
      expect(bulk.created).toEqual([]);
      await t.http().post('/discovery').send({ address, port_from: 80, port_to: 80 }).expect(400);
    });
  });

  describe('at request time', () => {
    let sims: Simulator[] = [];
    const apps: TestApp[] = [];
    const databases: TestDatabase[] = [];

    afterAll(async () => {
      for (const app of apps.reverse()) await app.close();
      for (const database of databases) await database.drop();
      for (const sim of sims) await sim.stop();
      sims = [];
    });

    const simulator = async (host: string, count: number) => {
      const ports = await freePorts(count);
      const sim = await startSimulator({ host, ports });
      sims.push(sim);
      expect(sim.failedPorts).toEqual([]);
      return { sim, ports };
    };

    it('a meter allowed when registered is not read after a restart with narrower networks: no connection is made', async () => {
      // 127.0.0.2 is loopback too (all of 127.0.0.0/8 is, on Linux).
      const narrowedV4 = await simulator('127.0.0.2', 1);
      const narrowedV6 = await simulator('::1', 1);
      const kept = await simulator('127.0.0.1', 1);
      const database = await createTestDatabase('ssrf-restart');
      databases.push(database);

      const before = await createTestApp('ssrf-before', { METER_ALLOWED_NETWORKS: '127.0.0.0/8,::1/128' }, { databaseUrl: database.url });
      for (const [address, port] of [
        ['127.0.0.2', narrowedV4.ports[0]],
        ['::1', narrowedV6.ports[0]],
        ['127.0.0.1', kept.ports[0]],
      ] as const) {
        await before.http().post('/meters').send({ meter_id: String(port), address, port }).expect(201);
      }
      await before.close();

      const after = await createTestApp('ssrf-after', { METER_ALLOWED_NETWORKS: '127.0.0.1/32' }, { databaseUrl: database.url });
      apps.push(after);
      expect(await after.polling.runCycle()).toMatchObject({ meters: 3, ok: 1, failed: 2 });

      for (const { sim, ports } of [narrowedV4, narrowedV6]) {
        const id = String(ports[0]);
        expect(sim.connectionsOf(ports[0])).toBe(0);
        expect(sim.requestsOf(ports[0])).toBe(0);
        const { health } = (await after.http().get(`/meters/${id}`).expect(200)).body;
        expect(health).toMatchObject({ state: 'down', consecutive_failures: 1 });
        expect(health.last_error).toMatch(/^not-allowed: .* is outside the allowed meter networks \(127\.0\.0\.1\/32\)$/);

        const live = await after.http().get(`/meters/${id}/data`).expect(502);
        expect(live.body).toEqual({ statusCode: 502, error: 'Bad Gateway', message: expect.stringMatching(/^not-allowed: /) });
        expect(sim.connectionsOf(ports[0])).toBe(0);
        expect(await countReadings(after.dataSource, id)).toBe(0);
      }
      expect(kept.sim.requestsOf(kept.ports[0])).toBe(1);
      expect(await countReadings(after.dataSource, String(kept.ports[0]))).toBe(1);

      // Nor can the narrowed address be scanned.
      await after.http().post('/discovery').send({ address: '127.0.0.2', port_from: 80, port_to: 80 }).expect(400);
    });

    it('addresses that reached the registry around the API are refused before any connection, in every spelling', async () => {
      // The template sends every request to the loopback simulator, whatever the meter's address: a guard that let
      // one through would show as a connection there, never as traffic to the address itself.
      const { sim, ports } = await simulator('127.0.0.1', NEVER.length + NOT_LITERALS.length + 1);
      const t = await createTestApp('ssrf-pinned', {
        METER_ALLOWED_NETWORKS: WIDE,
        METER_URL_TEMPLATE: 'http://127.0.0.1:{port}/?address={address}',
      });
      apps.push(t);
      const denied = [...NEVER.map(([address]) => address), ...NOT_LITERALS];
      for (const [i, address] of denied.entries()) await insertMeter(t.dataSource, { meter_id: String(ports[i]), address, port: ports[i] });
      // The control: an allowed address, read through the same template, reaches the simulator.
      const control = ports[denied.length];
      await insertMeter(t.dataSource, { meter_id: String(control), address: '198.51.100.7', port: control });

      expect(await t.polling.runCycle()).toMatchObject({ meters: denied.length + 1, ok: 1, failed: denied.length });
      expect(sim.requestsOf(control)).toBe(1);
      const rows: { meter_id: string; last_error: string }[] = await t.dataSource.query(
        'SELECT meter_id, last_error FROM meters WHERE meter_id <> $1',
        [String(control)],
      );
      expect(rows).toHaveLength(denied.length);
      for (const row of rows) expect(row.last_error).toMatch(/^not-allowed: /);
      for (const port of ports.slice(0, denied.length)) {
        expect({ port, connections: sim.connectionsOf(port) }).toEqual({ port, connections: 0 });
      }
      expect(await countReadings(t.dataSource)).toBe(1);
    });

    it('0.0.0.0 and :: would reach this host: the guard is what keeps them out', async () => {
      const v4 = await simulator('127.0.0.1', 1);
      const v6 = await simulator('::1', 1);
      // A plain connection to the unspecified address lands on the local listener (Linux), so the refusal below
      // is the guard at work, not a dead address.
      for (const [host, { sim, ports }] of [['0.0.0.0', v4], ['::', v6]] as const) {
        const socket = net.connect(ports[0], host);
        await new Promise<void>((resolve, reject) => socket.once('connect', () => resolve()).once('error', reject));
        socket.destroy();
        while (sim.connectionsOf(ports[0]) === 0) await new Promise((wake) => setTimeout(wake, 5));
      }
      const t = await createTestApp('ssrf-unspecified', { METER_ALLOWED_NETWORKS: WIDE });
      apps.push(t);
      await insertMeter(t.dataSource, { meter_id: 'unspecified-4', address: '0.0.0.0', port: v4.ports[0] });
      await insertMeter(t.dataSource, { meter_id: 'unspecified-6', address: '::', port: v6.ports[0] });
      expect(await t.polling.runCycle()).toMatchObject({ meters: 2, ok: 0, failed: 2 });
      await t.http().get('/meters/unspecified-4/data').expect(502);
      await t.http().get('/meters/unspecified-6/data').expect(502);
      expect(v4.sim.connectionsOf(v4.ports[0])).toBe(1); // the test's own connection only
      expect(v6.sim.connectionsOf(v6.ports[0])).toBe(1);
    });
  });

  describe('redirects and bodies', () => {
    let t: TestApp;
    let sim: Simulator;
    let ports: number[];
    let trap: number;
    let next = 0;
    /** A meter on the next port, registered now with `fault` (so earlier cycles never read it healthy). */
    const meter = async (fault: Fault) => {
      const port = ports[next++];
      sim.setFault(port, fault);
      await insertMeter(t.dataSource, { meter_id: String(port), port });
      return String(port);
    };

    beforeAll(async () => {
      [trap, ...ports] = await freePorts(16);
      sim = await startSimulator({ ports: [trap, ...ports] });
      expect(sim.failedPorts).toEqual([]);
      t = await createTestApp('ssrf-redirects', { POLL_TIMEOUT_MS: '1000' });
    });
    afterAll(async () => {
      await t?.close();
      await sim?.stop();
    });

    it.each([301, 302, 303, 307, 308])(
      'a %d to another meter port is never followed: 502 redirect, and that port gets no connection',
      async (status) => {
        const location = `http://127.0.0.1:${trap}/?${HOSTILE_MARKER}`;
        const id = await meter({ kind: 'redirect', location, status });
        const response = await t.http().get(`/meters/${id}/data`).expect(502);
        expect(response.body).toEqual({ statusCode: 502, error: 'Bad Gateway', message: `redirect: meter answered ${status}; redirects are not followed` });
        expect(response.text).not.toContain(String(trap));
        expect(sim.requestsOf(Number(id))).toBe(1);
        expect(sim.connectionsOf(trap)).toBe(0);

        await t.releaseClaims();
        await t.polling.runCycle();
        expect(sim.requestsOf(Number(id))).toBe(2);
        await t.writer.flush();
        expect(sim.connectionsOf(trap)).toBe(0);
        const { health } = (await t.http().get(`/meters/${id}`).expect(200)).body;
        expect(health.last_error).toBe(`redirect: meter answered ${status}; redirects are not followed`);
        expect(await countReadings(t.dataSource, id)).toBe(0);
      },
    );

    it.each([
      ['a 500 with a body', { kind: 'status', status: 500, body: `internal secret: ${HOSTILE_MARKER}` }, 'http-status: meter answered HTTP 500'],
      ['a 401 login page', { kind: 'status', status: 401, body: `<html><form>${HOSTILE_MARKER}</form></html>` }, 'http-status: meter answered HTTP 401'],
      ['a 200 web page', { kind: 'html' }, 'bad-payload: body is not JSON'],
      ['a reading in an array', { kind: 'json-array' }, 'bad-payload: body is JSON but not an object (got an array)'],
      ['a reading in invalid UTF-8', { kind: 'invalid-utf8' }, 'bad-payload: body is not valid UTF-8'],
    ] as const)('%s: the live read says what went wrong and nothing of the body', async (_name, fault, message) => {
      const id = await meter(fault);
      const response = await t.http().get(`/meters/${id}/data`).expect(502);
      expect(response.body).toEqual({ statusCode: 502, error: 'Bad Gateway', message });
      expect(response.text).not.toContain(HOSTILE_MARKER);
      await t.writer.flush();
      const meterView = await t.http().get(`/meters/${id}`).expect(200);
      expect(meterView.body.health.last_error).toBe(message);
      expect(meterView.text).not.toContain(HOSTILE_MARKER);
      expect(await countReadings(t.dataSource, id)).toBe(0);
    });
  });
});
