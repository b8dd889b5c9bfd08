import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import type { Response } from 'supertest';
import { Simulator, startSimulator } from '../tools/meter-simulator/simulator';
import { countReadings, insertMeter, insertReadings } from './support/factories';
import { freePorts } from './support/ports';
import { createTestApp, TestApp } from './support/test-app';

/**
 * Access control, rate limits and security headers (issue 5, item 6): with API_KEY set, every request that changes
 * state or reads a meter live needs the key; reads need it unless API_READ_OPEN=true; /health and /metrics never
 * do. Live reads are limited per meter and per client. Every answer carries the security headers.
 */

const KEY = 'em-test-key-6f1c9a2b7d4e8f30';
const WRONG_SAME_LENGTH = 'em-test-key-00000000000000000';
const WRONG_SHORT = 'nope';
const KEYS_SEEN_IN_TEST = [KEY, WRONG_SAME_LENGTH.slice(0, KEY.length), 'wrong-key-of-another-length-entirely'];

interface Call {
  name: string;
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  body?: unknown;
  type?: string;
}

/** Every route that changes state or reads a meter live, with a body that would succeed with the key. */
const PROTECTED: Call[] = [
  { name: 'POST /meters', method: 'post', path: '/meters', body: { meter_id: 'new-1', address: '127.0.0.1', port: 4001 } },
  { name: 'POST /meters/bulk (JSON)', method: 'post', path: '/meters/bulk', body: [{ meter_id: 'new-2', address: '127.0.0.1', port: 4002 }] },
  { name: 'POST /meters/bulk (CSV)', method: 'post', path: '/meters/bulk', body: 'meter_id,address,port\nnew-3,127.0.0.1,4003\n', type: 'text/csv' },
  { name: 'PATCH /meters/{id}', method: 'patch', path: '/meters/kept', body: { name: 'renamed' } },
  { name: 'DELETE /meters/{id}', method: 'delete', path: '/meters/kept' },
  { name: 'GET /meters/{id}/data (live read)', method: 'get', path: '/meters/kept/data' },
  { name: 'POST /discovery', method: 'post', path: '/discovery', body: { address: '127.0.0.1', port_from: 4100, port_to: 4101 } },
];

/** Read-only routes: they need the key unless API_READ_OPEN=true. */
const READS: Call[] = [
  { name: 'GET /meters', method: 'get', path: '/meters' },
  { name: 'GET /meters/{id}', method: 'get', path: '/meters/kept' },
  { name: 'GET /meters/{id}/stats', method: 'get', path: '/meters/kept/stats?start_date=01-08-2023&end_date=02-08-2023' },
  { name: 'GET /meters/{id}/data with dates (statistics)', method: 'get', path: '/meters/kept/data?start_date=01-08-2023&end_date=02-08-2023' },
  { name: 'GET /meters/{id}/stats with a JSON body', method: 'get', path: '/meters/kept/stats', body: { start_date: '01-08-2023', end_date: '02-08-2023' } },
  { name: 'GET /discovery', method: 'get', path: '/discovery' },
  { name: 'GET /discovery/{id}', method: 'get', path: '/discovery/1' },
];

const OPEN = ['/health', '/health/live', '/health/ready', '/metrics', '/docs', '/docs-json'];

/** What helmet sets on every answer (a sample of its headers, and the CSP). */
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'SAMEORIGIN',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'strict-transport-security': expect.stringContaining('max-age='),
  'content-security-policy': expect.stringContaining("default-src 'self'"),
};

function send(t: TestApp, call: Call, headers: Record<string, string> = {}) {
  let request = t.http()[call.method](call.path);
  for (const [name, value] of Object.entries(headers)) request = request.set(name, value);
  if (call.body !== undefined) {
    request = request.set('content-type', call.type ?? 'application/json');
    request = request.send(typeof call.body === 'string' ? call.body : JSON.stringify(call.body));
  }
  return request;
}

function expectErrorShape(response: Response, status: number): void {
  expect({ status: response.status, body: response.body }).toEqual({
    status,
    body: { statusCode: status, error: expect.any(String), message: expect.any(String) },
  });
}

function expectUnauthorized(response: Response, error?: 'invalid_token'): void {
  expectErrorShape(response, 401);
  expect(response.body.error).toBe('Unauthorized');
  const challenge = String(response.headers['www-authenticate']);
  expect(challenge).toMatch(/^Bearer realm="electric-meter"/);
  if (error) expect(challenge).toContain(`error="${error}"`);
  else expect(challenge).not.toContain('error=');
}

async function snapshot(t: TestApp): Promise<string> {
  const meters = await t.dataSource.query('SELECT * FROM meters ORDER BY meter_id');
  return JSON.stringify({ meters, readings: await countReadings(t.dataSource) });
}

describe('Access control, rate limits and security headers (issue 5.6)', () => {
  let sim: Simulator;
  let ports: number[];
  let locked: TestApp;
  let readOpen: TestApp;
  let open: TestApp;
  const output: string[] = [];
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };

  beforeAll(async () => {
    // Everything the service prints while these tests run, to show that no key ever reaches a log.
    for (const stream of ['stdout', 'stderr'] as const) {
      const original = writes[stream];
      process[stream].write = ((chunk: unknown, ...rest: unknown[]) => {
        output.push(String(chunk));
        return (original as (...args: unknown[]) => boolean).call(process[stream], chunk, ...rest);
      }) as typeof process.stdout.write;
    }
    ports = await freePorts(8);
    sim = await startSimulator({ ports, idOf: (port) => (port === ports[0] ? 'kept' : String(port)) });
    expect(sim.failedPorts).toEqual([]);
    [locked, readOpen, open] = await Promise.all([
      createTestApp('access_locked', {
        API_KEY: KEY,
        LIVE_READ_LIMIT_PER_METER: '3',
        LIVE_READ_LIMIT_PER_CLIENT: '5',
        LIVE_READ_LIMIT_WINDOW_SECONDS: '60',
      }),
      createTestApp('access_read_open', {
        API_KEY: KEY,
        API_READ_OPEN: 'true',
        POLL_TIMEOUT_MS: '4000',
        LIVE_READ_LIMIT_PER_METER: '3',
        LIVE_READ_LIMIT_PER_CLIENT: '1000',
      }),
      createTestApp('access_open'),
    ]);
    for (const t of [locked, readOpen, open]) {
      await insertMeter(t.dataSource, { meter_id: 'kept', port: ports[0] });
      await insertReadings(t.dataSource, 'kept', [['2023-08-01T10:00:00Z', 100], ['2023-08-01T11:00:00Z', 101]]);
    }
  });
  afterAll(async () => {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
    await Promise.all([locked?.close(), readOpen?.close(), open?.close()]);
    await sim?.stop();
  });

  describe('with API_KEY set', () => {
    it.each(PROTECTED.map((call) => [call.name, call] as const))(
      '%s without a key: 401 with the error shape and a Bearer challenge, nothing changed',
      async (_name, call) => {
        const before = await snapshot(locked);
        const requestsBefore = sim.requestsOf(ports[0]);
        expectUnauthorized(await send(locked, call));
        expect(await snapshot(locked)).toBe(before);
        expect(sim.requestsOf(ports[0])).toBe(requestsBefore);
      },
    );

    it.each(READS.map((call) => [call.name, call] as const))('%s without a key: 401', async (_name, call) => {
      expectUnauthorized(await send(locked, call));
    });

    it('answers 401 rather than 404 or 400, so a client without the key learns nothing about meters', async () => {
      expectUnauthorized(await locked.http().get('/meters/no-such-meter'));
      expectUnauthorized(await locked.http().get('/meters/not%20an%20id!'));
      expectUnauthorized(await locked.http().patch('/meters/no-such-meter').send({ port: 'x' }));
    });

    it('refuses a write before reading its body: broken JSON without the key is 401, not 400', async () => {
      const response = await locked.http().post('/meters').set('content-type', 'application/json').send('{"meter_id": ');
      expectUnauthorized(response);
    });

    it.each([
      ['a wrong key of the same length', { 'x-api-key': WRONG_SAME_LENGTH.slice(0, KEY.length) }],
      ['a wrong key of another length', { 'x-api-key': 'wrong-key-of-another-length-entirely' }],
      ['a short wrong key', { 'x-api-key': WRONG_SHORT }],
      ['a wrong bearer token', { authorization: `Bearer ${WRONG_SAME_LENGTH}` }],
      ['an empty bearer token', { authorization: 'Bearer' }],
      ['the right key with a wrong bearer token', { 'x-api-key': KEY, authorization: `Bearer ${WRONG_SHORT}` }],
      ['the key in another case', { 'x-api-key': KEY.toUpperCase() }],
    ])('refuses %s with 401 invalid_token', async (_name, headers) => {
      const before = await snapshot(locked);
      const create = PROTECTED[0];
      expectUnauthorized(await send(locked, create, headers), 'invalid_token');
      expectUnauthorized(await send(locked, READS[0], headers), 'invalid_token');
      expect(await snapshot(locked)).toBe(before);
    });

    it('treats another Authorization scheme (Basic) as no key', async () => {
      expectUnauthorized(await locked.http().get('/meters').set('authorization', 'Basic dXNlcjpwYXNz'));
    });

    it('never echoes the key or what was sent in place of it', async () => {
      const response = await locked.http().get('/meters').set('x-api-key', WRONG_SAME_LENGTH);
      expect(JSON.stringify(response.body) + JSON.stringify(response.headers)).not.toContain(WRONG_SAME_LENGTH);
    });

    it.each([
      ['X-API-Key', { 'x-api-key': KEY }],
      ['Authorization: Bearer', { authorization: `Bearer ${KEY}` }],
    ] as const)('serves every route with the key given as %s', async (name, headers: Record<string, string>) => {
      for (const call of READS) {
        const response = await send(locked, call, headers);
        // /discovery/1 does not exist in this app: 404 means the request got through.
        expect({ call: call.name, status: response.status }).toEqual({
          call: call.name,
          status: call.path === '/discovery/1' ? 404 : 200,
        });
      }
      const id = name === 'X-API-Key' ? 'with-header' : 'with-bearer';
      const port = name === 'X-API-Key' ? 4201 : 4202;
      await send(locked, { name: 'create', method: 'post', path: '/meters', body: { meter_id: id, address: '127.0.0.1', port } }, headers).expect(201);
      await send(locked, { name: 'patch', method: 'patch', path: `/meters/${id}`, body: { name: 'x' } }, headers).expect(200);
      await send(locked, { name: 'delete', method: 'delete', path: `/meters/${id}` }, headers).expect(204);
      const bulk = await send(locked, { name: 'bulk', method: 'post', path: '/meters/bulk', body: [{ meter_id: `${id}-b`, address: '127.0.0.1', port: port + 100 }] }, headers).expect(200);
      expect(bulk.body.created).toEqual([`${id}-b`]);
      await send(locked, { name: 'delete', method: 'delete', path: `/meters/${id}-b` }, headers).expect(204);
    });

    it('reads a meter live with the key', async () => {
      const response = await locked.http().get('/meters/kept/data').set('x-api-key', KEY).expect(200);
      expect(response.body).toMatchObject({ meter_id: 'kept', energy_kwh: expect.any(Number) });
    });

    it.each(OPEN)('keeps %s open without a key', async (path) => {
      await locked.http().get(path).expect(200);
    });
  });

  describe('with API_KEY set and API_READ_OPEN=true', () => {
    it.each(READS.map((call) => [call.name, call] as const))('%s is served without a key', async (_name, call) => {
      const response = await send(readOpen, call);
      expect(response.status).toBe(call.path === '/discovery/1' ? 404 : 200);
    });

    it.each(PROTECTED.map((call) => [call.name, call] as const))('%s still needs the key', async (_name, call) => {
      const before = await snapshot(readOpen);
      expectUnauthorized(await send(readOpen, call));
      expect(await snapshot(readOpen)).toBe(before);
    });

    it('still refuses a wrong key on a read (a key sent is checked)', async () => {
      expectUnauthorized(await readOpen.http().get('/meters').set('x-api-key', WRONG_SHORT), 'invalid_token');
    });
  });

  describe('without API_KEY (the default)', () => {
    it('serves every route without a key', async () => {
      for (const call of READS) {
        const response = await send(open, call);
        expect({ call: call.name, status: response.status }).toEqual({
          call: call.name,
          status: call.path === '/discovery/1' ? 404 : 200,
        });
      }
      await open.http().post('/meters').send({ meter_id: 'open-1', address: '127.0.0.1', port: 4301 }).expect(201);
      await open.http().delete('/meters/open-1').expect(204);
      await open.http().get('/meters/kept/data').expect(200);
    });
  });

  describe('rate limits on live reads', () => {
    const live = (meterId: string) => locked.http().get(`/meters/${meterId}/data`).set('x-api-key', KEY);

    it('limits live reads per meter and per client with 429, Retry-After and the error shape', async () => {
      // Fresh meters: 'kept' was read above. Per meter 3, per client 5 a minute in this app.
      const [a, b, c, d] = ports.slice(1, 5).map(String);
      for (const [index, id] of [a, b, c, d].entries()) await insertMeter(locked.dataSource, { meter_id: id, port: ports[1 + index] });
      // The client has used 1 live read ('kept'); meter a takes 3 more.
      for (let i = 0; i < 3; i++) await live(a).expect(200);
      const perMeter = await live(a);
      expectErrorShape(perMeter, 429);
      expect(perMeter.body.error).toBe('Too Many Requests');
      expect(perMeter.body.message).toContain(`meter "${a}"`);
      const retryAfter = Number(perMeter.headers['retry-after']);
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(perMeter.headers).toMatchObject(SECURITY_HEADERS);
      // A refused read is not counted: the client has used 4 of 5.
      await live(b).expect(200);
      const perClient = await live(c);
      expectErrorShape(perClient, 429);
      expect(perClient.body.message).toContain('from this client');
      expect(Number(perClient.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // Nothing was read or stored for the refused reads.
      expect(sim.requestsOf(ports[3])).toBe(0);
      expect(await countReadings(locked.dataSource, c)).toBe(0);
    });

    it('does not limit statistics through /data with dates, nor any other read', async () => {
      const [a] = ports.slice(1, 2).map(String);
      await locked.http().get(`/meters/${a}/data?start_date=01-08-2023&end_date=02-08-2023`).set('x-api-key', KEY).expect(200);
      await locked.http().get(`/meters/${a}/stats?start_date=01-08-2023&end_date=02-08-2023`).set('x-api-key', KEY).expect(200);
      await locked.http().get(`/meters/${a}`).set('x-api-key', KEY).expect(200);
    });

    it('checks the key before the limit: reads refused with 401 do not use up the limit', async () => {
      const id = String(ports[6]);
      await insertMeter(readOpen.dataSource, { meter_id: id, port: ports[6] });
      for (let i = 0; i < 5; i++) expectUnauthorized(await readOpen.http().get(`/meters/${id}/data`));
      // Per meter 3 a minute in this app: all three are still there.
      for (let i = 0; i < 3; i++) await readOpen.http().get(`/meters/${id}/data`).set('x-api-key', KEY).expect(200);
      expect((await readOpen.http().get(`/meters/${id}/data`).set('x-api-key', KEY)).status).toBe(429);
    });

    it('counts concurrent live reads of one meter that share one meter request as one read', async () => {
      const port = ports[5];
      const id = String(port);
      await insertMeter(readOpen.dataSource, { meter_id: id, port });
      sim.setFault(port, { kind: 'slow', delayMs: 1000 });
      await sim.settle();
      const server = readOpen.app.getHttpServer();
      await new Promise<void>((listening) => server.listen(0, '127.0.0.1', () => listening()));
      const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 25 });
      try {
        const read = async () => {
          const response = await pool.request({ method: 'GET', path: `/meters/${id}/data`, headers: { 'x-api-key': KEY } });
          return { status: response.statusCode, body: (await response.body.json()) as { taken_at?: string } };
        };
        const before = sim.requestsOf(port);
        const answers = await Promise.all(Array.from({ length: 20 }, read));
        expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200));
        expect(new Set(answers.map((answer) => answer.body.taken_at)).size).toBe(1);
        expect(sim.requestsOf(port) - before).toBe(1);
        // Per meter 3 a minute in this app: the twenty shared reads counted once, so two more are admitted.
        sim.setFault(port, { kind: 'healthy' });
        await sim.settle();
        expect((await read()).status).toBe(200);
        expect((await read()).status).toBe(200);
        expect((await read()).status).toBe(429);
      } finally {
        await pool.close();
        await new Promise((closed) => server.close(closed));
      }
    });
  });

  describe('security headers', () => {

    it.each([
      ['a JSON answer', (t: TestApp) => t.http().get('/meters').set('x-api-key', KEY), 200],
      ['a 404', (t: TestApp) => t.http().get('/meters/none').set('x-api-key', KEY), 404],
      ['a 400', (t: TestApp) => t.http().get('/meters?limit=x').set('x-api-key', KEY), 400],
      ['a 401', (t: TestApp) => t.http().get('/meters'), 401],
      ['an early 401 on a write', (t: TestApp) => t.http().post('/meters').send({}), 401],
      ['a 413', (t: TestApp) => t.http().post('/meters').set('x-api-key', KEY).set('content-type', 'application/json').send(`"${'x'.repeat(2_000_000)}"`), 413],
      ['an unknown route', (t: TestApp) => t.http().get('/nowhere'), 404],
      ['/metrics', (t: TestApp) => t.http().get('/metrics'), 200],
      ['/health', (t: TestApp) => t.http().get('/health'), 200],
      ['/docs', (t: TestApp) => t.http().get('/docs'), 200],
      ['/docs-json', (t: TestApp) => t.http().get('/docs-json'), 200],
    ] as const)('on %s', async (_name, call, status) => {
      const response = await call(locked);
      expect(response.status).toBe(status);
      expect(response.headers).toMatchObject(SECURITY_HEADERS);
      expect(response.headers['x-powered-by']).toBeUndefined();
    });

    it('has a CSP that lets Swagger UI run: its scripts are files of this origin, its styles inline', async () => {
      const page = await locked.http().get('/docs').expect(200);
      const csp = String(page.headers['content-security-policy']);
      const directives = new Map(
        csp.split(';').map((part) => {
          const [name, ...values] = part.trim().split(/\s+/);
          return [name, values] as const;
        }),
      );
      // No inline script on the page: script-src 'self' admits every script it has.
      const scripts = [...page.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
      expect(scripts.length).toBeGreaterThanOrEqual(3);
      for (const [, attributes, code] of scripts) {
        expect(code.trim()).toBe('');
        const src = /src=["']([^"']+)["']/.exec(attributes)?.[1];
        expect(src).toBeDefined();
        expect(new URL(src!, 'http://127.0.0.1/docs').origin).toBe('http://127.0.0.1');
      }
      expect(directives.get('script-src')).toEqual(["'self'"]);
      // The page has <style> blocks and the UI sets style attributes; its icons are data: URLs.
      expect(page.text).toContain('<style>');
      expect(directives.get('style-src')).toContain("'unsafe-inline'");
      expect(directives.get('img-src')).toEqual(expect.arrayContaining(["'self'", 'data:']));
      // "Try it out" calls this origin.
      expect(directives.get('connect-src') ?? directives.get('default-src')).toContain("'self'");
      // Served over plain HTTP on a local network, upgrading would break the page's own assets.
      expect(directives.has('upgrade-insecure-requests')).toBe(false);
      // Every asset the page names is served.
      const assets = [...page.text.matchAll(/(?:src|href)=["']([^"']+\.(?:js|css|png))["']/g)].map((match) => match[1]);
      for (const asset of assets) {
        const path = new URL(asset, 'http://127.0.0.1/docs').pathname;
        const response = await locked.http().get(path);
        expect({ path, status: response.status }).toEqual({ path, status: 200 });
      }
    });
  });

  describe('the OpenAPI document', () => {
    interface Operation {
      security?: Record<string, string[]>[];
      responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }>; headers?: Record<string, unknown> }>;
    }
    let doc: {
      paths: Record<string, Record<string, Operation>>;
      components: { securitySchemes?: Record<string, Record<string, unknown>> };
    };
    const KEYED = [{ 'api-key': [] }, { bearer: [] }];

    beforeAll(async () => {
      doc = (await open.http().get('/docs-json').expect(200)).body;
    });

    it('defines the key as an X-API-Key header and as a bearer token', () => {
      expect(doc.components.securitySchemes).toEqual({
        'api-key': expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }),
        bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      });
    });

    it('requires the key on every operation that changes state and on the live read, with 401 documented', () => {
      const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.entries(item).map(([method, operation]) => ({ path, method, operation })),
      );
      const protectedOps = operations.filter(({ method, path }) => method !== 'get' || path === '/meters/{meterId}/data');
      expect(protectedOps.map(({ method, path }) => `${method} ${path}`).sort()).toEqual(
        [
          'delete /meters/{meterId}',
          'get /meters/{meterId}/data',
          'patch /meters/{meterId}',
          'post /discovery',
          'post /meters',
          'post /meters/bulk',
        ].sort(),
      );
      for (const { method, path, operation } of protectedOps) {
        expect({ method, path, security: operation.security }).toEqual({ method, path, security: KEYED });
        expect(operation.responses['401']?.content?.['application/json']?.schema?.$ref).toBe(
          '#/components/schemas/ErrorResponseDto',
        );
      }
    });

    it('lists the key as optional on reads and as not needed on /health and /metrics', () => {
      for (const path of ['/meters', '/meters/{meterId}', '/meters/{meterId}/stats', '/discovery', '/discovery/{id}']) {
        expect({ path, security: doc.paths[path].get.security }).toEqual({ path, security: [...KEYED, {}] });
        expect(doc.paths[path].get.responses['401']).toBeDefined();
      }
      for (const path of ['/health', '/health/live', '/health/ready', '/metrics']) {
        expect({ path, security: doc.paths[path].get.security }).toEqual({ path, security: [] });
        expect(doc.paths[path].get.responses['401']).toBeUndefined();
      }
    });

    it('documents 429 with Retry-After on the live read', () => {
      const tooMany = doc.paths['/meters/{meterId}/data'].get.responses['429'];
      expect(tooMany?.content?.['application/json']?.schema?.$ref).toBe('#/components/schemas/ErrorResponseDto');
      expect(tooMany?.headers?.['Retry-After']).toBeDefined();
    });
  });

  describe('secrets', () => {
    it('documents API_KEY in .env.example with an empty value, and keeps no key in it', () => {
      const example = readFileSync(resolve(__dirname, '..', '.env.example'), 'utf8');
      expect(example).toMatch(/^API_KEY=$/m);
      expect(example).toMatch(/^API_READ_OPEN=false$/m);
      for (const name of ['LIVE_READ_LIMIT_PER_METER', 'LIVE_READ_LIMIT_PER_CLIENT', 'LIVE_READ_LIMIT_WINDOW_SECONDS']) {
        expect(example).toMatch(new RegExp(`^${name}=\\d+$`, 'm'));
      }
    });

    it('never printed a key, right or wrong, while these tests ran', () => {
      const printed = output.join('');
      for (const key of KEYS_SEEN_IN_TEST) expect(printed).not.toContain(key);
    });
  });
});
