import type { Response } from 'supertest';
import { HealthController } from '../src/health/health.controller';
import { Simulator, startSimulator } from '../tools/meter-simulator/simulator';
import { previewDocument } from '../tools/openapi-document';
import { createTestDatabase, TestDatabase } from './setup/test-database';
import { insertMeter, insertReadings } from './support/factories';
import { documentedOperations, OpenApiDocument, SchemaValidator } from './support/openapi-contract';
import { freePorts } from './support/ports';
import { startTcpProxy, TcpProxy } from './support/tcp-proxy';
import { createTestApp, TestApp } from './support/test-app';

/**
 * Contract test (issue 6, item 4): every operation of the document at /docs-json is called for real (app, database,
 * simulated meters), and every answer is checked against the document: its status must be one the operation
 * lists, its content type one listed for that status, and its body must validate against that status's schema
 * (additionalProperties as documented: the schemas are closed, so a field the document does not name fails).
 * The last test enumerates the document: every response it lists, success or error, must have been produced
 * here, so a new route or a newly documented status fails this file until a request for it is added below.
 */

const KEY = 'contract-test-key-3b9e6f1a52c4';
const ENV = {
  API_KEY: KEY,
  LIVE_READ_LIMIT_PER_METER: '2',
  HTTP_BODY_LIMIT_BYTES: '4096',
  HTTP_BULK_BODY_LIMIT_BYTES: '8192',
  POLL_TIMEOUT_MS: '700',
};
/** Over both body limits above. */
const OVERSIZED_BODY = JSON.stringify({ padding: 'x'.repeat(16 * 1024) });

/** The methods the API uses (a new one in the document fails at `t.http()[method]`, loudly). */
type Method = 'get' | 'post' | 'patch' | 'delete';
interface Call {
  /** Send the API key (default true). */
  key?: boolean;
  body?: unknown;
  /** Content-Type of a body sent as it is (a string). */
  type?: string;
}

describe('Contract: every operation answers as /docs-json documents it', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let sim: Simulator;
  let t: TestApp;
  let document: OpenApiDocument;
  let validator: SchemaValidator;
  const exercised = new Set<string>();

  // Simulated meters: healthy ones, one that refuses, one that hangs; two more probed by discovery.
  let ports: number[];
  const meter = (index: number) => String(ports[index]);
  const HEALTHY = 0;
  const RATE_LIMITED = 1;
  const REFUSES = 2;
  const HANGS = 3;
  const WITH_HISTORY = 4;
  const DATABASE_DOWN = 5;
  const DISCOVERED = 6;
  const DISCOVERY_HANGS = 7;

  beforeAll(async () => {
    ports = await freePorts(8);
    sim = await startSimulator({ ports });
    expect(sim.failedPorts).toEqual([]);
    sim.setFault(ports[REFUSES], { kind: 'refuse' });
    sim.setFault(ports[HANGS], { kind: 'hang' });
    sim.setFault(ports[DISCOVERY_HANGS], { kind: 'hang' });
    await sim.settle();
    // The database behind a proxy, so that it can be taken away for the 503s at the end.
    database = await createTestDatabase('contract');
    proxy = await startTcpProxy({ host: new URL(database.url).hostname, port: Number(new URL(database.url).port) });
    t = await createTestApp('contract', ENV, { databaseUrl: proxy.urlThrough(database.url) });
    for (const index of [HEALTHY, RATE_LIMITED, REFUSES, HANGS, WITH_HISTORY, DATABASE_DOWN]) {
      await insertMeter(t.dataSource, { meter_id: meter(index), port: ports[index] });
    }
    await insertReadings(t.dataSource, meter(WITH_HISTORY), [
      ['2023-08-11T23:59:00Z', 44325, 30],
      ['2023-08-12T06:00:00Z', 44340.5, 12.5],
      ['2023-08-13T12:00:00Z', 44390, 50],
      ['2023-08-14T23:00:00Z', 44410.25, 0],
    ]);
    document = (await t.http().get('/docs-json').expect(200)).body as OpenApiDocument;
    validator = new SchemaValidator(document);
  });
  afterAll(async () => {
    if (proxy && !proxy.isUp) await proxy.restore();
    await t?.close();
    await database?.drop();
    await proxy?.close();
    await sim?.stop();
  });

  /**
   * Calls `operation` ("get /meters/{meterId}") at `url`, expects `status`, and checks the answer against the
   * document. Records the (operation, status) pair as exercised.
   */
  async function call(operation: string, url: string, status: number, options: Call = {}): Promise<Response> {
    const [method, path] = operation.split(' ') as [Method, string];
    let request = t.http()[method](url);
    if (options.key !== false) request = request.set('X-API-Key', KEY);
    if (options.type !== undefined) request = request.set('Content-Type', options.type);
    const response = options.body === undefined ? await request : await request.send(options.body as object);
    expect({ operation, url, status: response.status, body: response.body }).toMatchObject({ status });
    expect({ operation, status, problems: conformance(method, path, response) }).toEqual({ operation, status, problems: [] });
    exercised.add(`${operation} ${status}`);
    return response;
  }

  /** What in the answer the document does not say (empty when it conforms). */
  function conformance(method: string, path: string, response: Response): string[] {
    const operation = document.paths[path]?.[method];
    if (!operation) return [`${method} ${path} is not in the document`];
    const documented = operation.responses[String(response.status)];
    if (!documented) return [`status ${response.status} is not documented`];
    const headers = Object.keys(documented.headers ?? {})
      .filter((name) => response.headers[name.toLowerCase()] === undefined)
      .map((name) => `documented header ${name} is missing`);
    if (headers.length > 0) return headers;
    if (!documented.content) {
      return response.text ? [`the document gives no body for ${response.status}, the answer has one`] : [];
    }
    const mediaType = String(response.headers['content-type'] ?? '').split(';')[0].trim();
    const content = documented.content[mediaType];
    if (!content) return [`content type "${mediaType}" is not documented (${Object.keys(documented.content).join(', ')})`];
    if (!content.schema) return [`no schema for ${mediaType}`];
    const body = mediaType === 'application/json' ? response.body : response.text;
    return validator.problems(content.schema, body);
  }

  /** The URL of an operation with its path parameters filled in. */
  const urlOf = (path: string, params: Record<string, string>) =>
    path.replace(/\{(\w+)\}/g, (_, name: string) => {
      if (params[name] === undefined) throw new Error(`no value for path parameter ${name} of ${path}`);
      return encodeURIComponent(params[name]);
    });

  it('serves the same document the lint job lints (built in preview mode, without a database)', async () => {
    const preview = await previewDocument(ENV);
    expect(preview).toEqual(document);
  });

  it('checks bodies for real: an undocumented field or a wrong type fails validation', () => {
    const schema = document.paths['/meters/{meterId}'].get.responses['200'].content!['application/json'].schema;
    const meter = {
      meter_id: '1000',
      name: null,
      address: '127.0.0.1',
      port: 1000,
      enabled: true,
      health: {
        state: 'unknown',
        last_attempt_at: null,
        last_success_at: null,
        last_error: null,
        consecutive_failures: 0,
        last_poll_duration_ms: null,
      },
      latest_reading: null,
      created_at: '2026-12-03T10:00:00.000Z',
      updated_at: '2026-12-03T10:00:00.000Z',
    };
    expect(validator.problems(schema, meter)).toEqual([]);
    expect(validator.problems(schema, { ...meter, secret: 'x' })).toEqual([expect.stringContaining('"secret"')]);
    expect(validator.problems(schema, { ...meter, port: '1000' })).toEqual([expect.stringContaining('/port')]);
    expect(validator.problems(schema, { ...meter, health: { ...meter.health, extra: 1 } })).not.toEqual([]);
    expect(validator.problems(schema, { ...meter, created_at: 'yesterday' })).not.toEqual([]);
  });

  describe('meters', () => {
    it('POST /meters: 201, 400, 409', async () => {
      const created = await call('post /meters', '/meters', 201, {
        body: { meter_id: 'contract-1', address: '127.0.0.1', port: 30001, name: 'Contract' },
      });
      expect(created.body.meter_id).toBe('contract-1');
      await call('post /meters', '/meters', 400, { body: { meter_id: 'contract-2', address: '127.0.0.1', port: '30002' } });
      await call('post /meters', '/meters', 400, { body: { meter_id: 'contract-2', address: '8.8.8.8', port: 30002 } });
      await call('post /meters', '/meters', 409, { body: { meter_id: 'contract-1', address: '127.0.0.1', port: 30003 } });
    });

    it('POST /meters/bulk: 200 for JSON and CSV, 400', async () => {
      const json = await call('post /meters/bulk', '/meters/bulk', 200, {
        body: [
          { meter_id: 'bulk-1', address: '127.0.0.1', port: 30011 },
          { meter_id: 'contract-1', address: '127.0.0.1', port: 30012 },
        ],
      });
      expect(json.body).toMatchObject({ created_count: 1, refused_count: 1 });
      const csv = await call('post /meters/bulk', '/meters/bulk', 200, {
        type: 'text/csv',
        body: 'meter_id,address,port,name,enabled\nbulk-2,127.0.0.1,30013,,false\n',
      });
      expect(csv.body).toMatchObject({ created_count: 1, created: ['bulk-2'] });
      await call('post /meters/bulk', '/meters/bulk', 400, { body: { meter_id: 'not-an-array' } });
    });

    it('GET /meters: 200, 400', async () => {
      const page = await call('get /meters', '/meters?limit=2&offset=1', 200);
      expect(page.body.items).toHaveLength(2);
      await call('get /meters', '/meters?state=sideways', 400);
    });

    it('GET /meters/{meterId}: 200 (never polled, and with a reading), 400, 404', async () => {
      await call('get /meters/{meterId}', '/meters/contract-1', 200);
      await call('get /meters/{meterId}/data', `/meters/${meter(HEALTHY)}/data`, 200);
      await t.writer.flush();
      const read = await call('get /meters/{meterId}', `/meters/${meter(HEALTHY)}`, 200);
      expect(read.body.latest_reading).not.toBeNull();
      await call('get /meters/{meterId}', '/meters/not%20an%20id', 400);
      await call('get /meters/{meterId}', '/meters/no-such-meter', 404);
    });

    it('PATCH /meters/{meterId}: 200, 400, 404, 409', async () => {
      await call('patch /meters/{meterId}', '/meters/contract-1', 200, { body: { name: null, enabled: false } });
      await call('patch /meters/{meterId}', '/meters/contract-1', 400, { body: {} });
      await call('patch /meters/{meterId}', '/meters/no-such-meter', 404, { body: { name: 'x' } });
      await call('patch /meters/{meterId}', '/meters/contract-1', 409, { body: { port: 30011 } });
    });

    it('DELETE /meters/{meterId}: 204, 400, 404', async () => {
      await call('delete /meters/{meterId}', '/meters/bulk-2', 204);
      await call('delete /meters/{meterId}', '/meters/not%20an%20id', 400);
      await call('delete /meters/{meterId}', '/meters/bulk-2', 404);
    });
  });

  describe('live data, statistics, history', () => {
    it('GET /meters/{meterId}/data: 200 live and 200 statistics, 400, 404, 502, 504, 429', async () => {
      const live = await call('get /meters/{meterId}/data', `/meters/${meter(RATE_LIMITED)}/data`, 200);
      expect(live.body).toEqual(expect.objectContaining({ meter_id: meter(RATE_LIMITED) }));
      await call('get /meters/{meterId}/data', `/meters/${meter(RATE_LIMITED)}/data`, 200);
      const limited = await call('get /meters/{meterId}/data', `/meters/${meter(RATE_LIMITED)}/data`, 429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      const stats = await call(
        'get /meters/{meterId}/data',
        `/meters/${meter(WITH_HISTORY)}/data?start_date=12-08-2023&end_date=14-08-2023`,
        200,
      );
      expect(stats.body).toMatchObject({ readings: 3, consumption_kwh: 85.25 });
      await call('get /meters/{meterId}/data', `/meters/${meter(WITH_HISTORY)}/data`, 200, {
        body: { start_date: '12-08-2023', end_date: '14-08-2023' },
      });
      const impossibleDay = `/meters/${meter(WITH_HISTORY)}/data?start_date=31-02-2023&end_date=01-03-2023`;
      await call('get /meters/{meterId}/data', impossibleDay, 400);
      await call('get /meters/{meterId}/data', '/meters/no-such-meter/data', 404);
      await call('get /meters/{meterId}/data', `/meters/${meter(REFUSES)}/data`, 502);
      await call('get /meters/{meterId}/data', `/meters/${meter(HANGS)}/data`, 504);
    });

    it('GET /meters/{meterId}/stats: 200 (with and without buckets), 400, 404', async () => {
      const url = `/meters/${meter(WITH_HISTORY)}/stats?start_date=12-08-2023&end_date=14-08-2023`;
      const plain = await call('get /meters/{meterId}/stats', url, 200);
      expect(plain.body).toMatchObject({ readings: 3, consumption_kwh: 85.25, resets: 0, misreads: 0 });
      const buckets = await call('get /meters/{meterId}/stats', `${url}&bucket=day&tz=Europe/Berlin`, 200);
      expect(buckets.body.buckets.length).toBeGreaterThanOrEqual(3);
      await call('get /meters/{meterId}/stats', `/meters/${meter(WITH_HISTORY)}/stats`, 200, {
        body: { start_date: '01-01-2020', end_date: '02-01-2020' },
      });
      const backwards = `/meters/${meter(WITH_HISTORY)}/stats?start_date=14-08-2023&end_date=12-08-2023`;
      await call('get /meters/{meterId}/stats', backwards, 400);
      await call('get /meters/{meterId}/stats', '/meters/no-such-meter/stats?start_date=12-08-2023&end_date=14-08-2023', 404);
    });

    it('GET /meters/{meterId}/readings: 200 as JSON pages and as CSV, 400, 404', async () => {
      const path = `/meters/${meter(WITH_HISTORY)}/readings`;
      const first = await call('get /meters/{meterId}/readings', `${path}?limit=3`, 200);
      expect(first.body.items).toHaveLength(3);
      const last = await call('get /meters/{meterId}/readings', `${path}?cursor=${first.body.next_cursor}`, 200);
      expect(last.body).toMatchObject({ items: [expect.any(Object)], next_cursor: null });
      const csv = await call('get /meters/{meterId}/readings', `${path}?format=csv`, 200);
      expect(csv.text.trim().split('\n')).toHaveLength(5);
      await call('get /meters/{meterId}/readings', `${path}?limit=0`, 400);
      await call('get /meters/{meterId}/readings', '/meters/no-such-meter/readings', 404);
    });
  });

  describe('discovery', () => {
    /** Polls GET /discovery/{id} (each answer checked) until the scan is over. */
    async function finished(id: string): Promise<Response> {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const job = await call('get /discovery/{id}', `/discovery/${id}`, 200);
        if (job.body.status !== 'running' || Date.now() > deadline) return job;
        await new Promise((wake) => setTimeout(wake, 100));
      }
    }

    it('POST /discovery: 202, 409 while a scan runs, 400; GET /discovery and /discovery/{id}: 200, 400, 404', async () => {
      // A port that hangs until the probe deadline: the scan runs long enough to be refused a twin.
      const slow = { address: '127.0.0.1', port_from: ports[DISCOVERY_HANGS], port_to: ports[DISCOVERY_HANGS] };
      const first = await call('post /discovery', '/discovery', 202, { body: slow });
      await call('post /discovery', '/discovery', 409, { body: slow });
      expect((await finished(String(first.body.id))).body).toMatchObject({ status: 'done', not_a_meter_count: 1 });

      const meterPort = { address: '127.0.0.1', port_from: ports[DISCOVERED], port_to: ports[DISCOVERED] };
      const second = await call('post /discovery', '/discovery', 202, { body: meterPort });
      expect((await finished(String(second.body.id))).body).toMatchObject({
        status: 'done',
        found: [{ meter_id: meter(DISCOVERED), port: ports[DISCOVERED] }],
      });
      await call('post /discovery', '/discovery', 400, { body: { ...meterPort, port_from: 2, port_to: 1 } });
      const list = await call('get /discovery', '/discovery', 200);
      expect(list.body).toHaveLength(2);
      await call('get /discovery/{id}', '/discovery/first', 400);
      await call('get /discovery/{id}', '/discovery/999', 404);
    });
  });

  describe('operations', () => {
    it('GET /health, /health/live, /health/ready: 200; GET /metrics: 200 in the Prometheus text format', async () => {
      await call('get /health', '/health', 200, { key: false });
      await call('get /health/live', '/health/live', 200, { key: false });
      await call('get /health/ready', '/health/ready', 200, { key: false });
      const metrics = await call('get /metrics', '/metrics', 200, { key: false });
      expect(metrics.text).toContain('# TYPE meters gauge');
    });
  });

  describe('what every route answers (enumerated from the document)', () => {
    /** A meter and a scan that exist, for the path parameters of any operation. */
    const params = () => ({ meterId: meter(HEALTHY), id: '1' });

    it('400 for a query parameter named after an Object.prototype member, on every operation listing 400', async () => {
      for (const operation of documentedOperations(document)) {
        const [method, path] = operation.split(' ');
        if (!document.paths[path][method].responses['400']) continue;
        await call(operation, `${urlOf(path, params())}?constructor=1`, 400);
      }
    });

    it('401 without the key, on every operation listing 401', async () => {
      let listed = 0;
      for (const operation of documentedOperations(document)) {
        const [method, path] = operation.split(' ');
        if (!document.paths[path][method].responses['401']) continue;
        listed++;
        const response = await call(operation, urlOf(path, params()), 401, { key: false });
        expect(response.headers['www-authenticate']).toMatch(/^Bearer realm=/);
      }
      expect(listed).toBeGreaterThanOrEqual(10);
    });

    it('413 for a body over the limit and 415 for a charset it does not read, on every operation listing them', async () => {
      for (const operation of documentedOperations(document)) {
        const [method, path] = operation.split(' ');
        const responses = document.paths[path][method].responses;
        if (responses['413']) {
          await call(operation, urlOf(path, params()), 413, { type: 'application/json', body: OVERSIZED_BODY });
        }
        if (responses['415']) {
          await call(operation, urlOf(path, params()), 415, { type: 'application/json; charset=latin1', body: '[]' });
        }
      }
    });

    it('503 while the database is unreachable, on every operation listing 503', async () => {
      /** A request of each operation that would succeed with the database up. */
      const requests: Record<string, [url: string, options: Call]> = {
        'post /meters': ['/meters', { body: { meter_id: 'down-1', address: '127.0.0.1', port: 30021 } }],
        'post /meters/bulk': ['/meters/bulk', { body: [{ meter_id: 'down-2', address: '127.0.0.1', port: 30022 }] }],
        'get /meters': ['/meters', {}],
        'get /meters/{meterId}': [`/meters/${meter(HEALTHY)}`, {}],
        'patch /meters/{meterId}': [`/meters/${meter(HEALTHY)}`, { body: { name: 'down' } }],
        'delete /meters/{meterId}': [`/meters/${meter(HEALTHY)}`, {}],
        'get /meters/{meterId}/data': [`/meters/${meter(DATABASE_DOWN)}/data`, {}],
        'get /meters/{meterId}/stats': [`/meters/${meter(WITH_HISTORY)}/stats?start_date=12-08-2023&end_date=14-08-2023`, {}],
        'get /meters/{meterId}/readings': [`/meters/${meter(WITH_HISTORY)}/readings`, {}],
        'get /health': ['/health', { key: false }],
        'get /health/ready': ['/health/ready', { key: false }],
      };
      await proxy.cut();
      try {
        for (const operation of documentedOperations(document)) {
          const [method, path] = operation.split(' ');
          if (!document.paths[path][method].responses['503']) continue;
          // Liveness does not ask the database: its 503 is the shutdown's, below.
          if (operation === 'get /health/live') continue;
          expect({ operation, request: operation in requests }).toEqual({ operation, request: true });
          const [url, options] = requests[operation];
          await call(operation, url, 503, options);
        }
      } finally {
        await proxy.restore();
      }
    });
  });

  it('503 from both probes once a stop has begun (the first shutdown hook)', async () => {
    // What SIGTERM's first step does (app.close() runs the same hook, then closes the server this test talks to).
    t.app.get(HealthController).onModuleDestroy();
    const live = await call('get /health/live', '/health/live', 503, { key: false });
    expect(live.body).toMatchObject({ status: 'shutting_down' });
    const ready = await call('get /health/ready', '/health/ready', 503, { key: false });
    expect(ready.body).toMatchObject({ status: 'shutting_down' });
  });

  it('produced every response the document lists, for every operation', () => {
    const missing = documentedOperations(document).flatMap((operation) => {
      const [method, path] = operation.split(' ');
      return Object.keys(document.paths[path][method].responses)
        .map((status) => `${operation} ${status}`)
        .filter((response) => !exercised.has(response));
    });
    expect(documentedOperations(document).length).toBeGreaterThanOrEqual(14);
    expect(missing).toEqual([]);
  });
});
