import { Simulator, startSimulator } from '../tools/meter-simulator/simulator';
import { createTestDatabase, TestDatabase } from './setup/test-database';
import { freePorts } from './support/ports';
import { exitWithin, killStartedServices, ServiceProcess, startService, waitUntilHealthy } from './support/service-process';
import { startTcpProxy, TcpProxy } from './support/tcp-proxy';

/**
 * Issue 6.3: the service as an operator runs it (its own process), its stdout parsed line by line. Every line is
 * JSON; API lines carry the request id the answer's X-Request-Id names; one summary line per polling cycle with
 * counts that match the meters; no API key, database password or meter body anywhere; LOG_LEVEL=warn leaves out
 * info.
 */

const KEY = 'Log-Test-Key-4f9c2e81d7a6';
const WRONG_KEY = 'Wrong-Key-7d1e9b3a5c0f';

interface LogLine {
  level: string;
  time: string;
  msg: string;
  context?: string;
  reqId?: string;
  req?: { id?: string; method?: string; url?: string };
  res?: { statusCode?: number };
  cycle?: { meters: number; ok: number; failed: number; duration_ms: number; skipped_ticks: number; stored: number };
  [field: string]: unknown;
}

/** Every stdout line as JSON; a line that is not JSON fails the test, naming it. */
function parse(stdout: string): LogLine[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as LogLine;
      } catch {
        throw new Error(`a log line that is not JSON: ${line}`);
      }
    });
}

async function waitFor<T>(what: string, find: () => T | undefined, service: ServiceProcess, timeoutMs = 20_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}\n${service.tail()}`);
    await new Promise((wake) => setTimeout(wake, 100));
  }
}

let database: TestDatabase;
let proxy: TcpProxy;
let sim: Simulator;
let ports: number[];

beforeAll(async () => {
  database = await createTestDatabase('logging');
  const target = new URL(database.url);
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  ports = await freePorts(3);
  sim = await startSimulator({ ports });
  expect(sim.failedPorts).toEqual([]);
  sim.setFault(ports[2], { kind: 'status', status: 500 });
  await sim.settle();
});

afterAll(async () => {
  killStartedServices();
  await sim?.stop();
  await proxy?.close();
  await database?.drop();
}, 30_000);

async function start(logLevel: string): Promise<ServiceProcess> {
  const [port] = await freePorts(1);
  return startService(port, {
    DATABASE_URL: proxy.urlThrough(database.url),
    API_KEY: KEY,
    LOG_LEVEL: logLevel,
    POLL_INTERVAL_SECONDS: '1',
    POLL_TIMEOUT_MS: '500',
    POLL_SCHEDULE: 'burst',
  });
}

async function call(
  service: ServiceProcess,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<{ status: number; requestId: string | null }> {
  const response = await fetch(`http://127.0.0.1:${service.port}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await response.arrayBuffer();
  return { status: response.status, requestId: response.headers.get('x-request-id') };
}

async function stop(service: ServiceProcess): Promise<void> {
  service.child.kill('SIGTERM');
  const exit = await exitWithin(service, 30_000, 'exit after SIGTERM');
  expect({ exit, output: exit.code === 0 ? '' : service.tail() }).toEqual({ exit: { code: 0, signal: null }, output: '' });
}

describe('Structured JSON logs (issue 6.3)', () => {
  it('logs JSON lines: request ids on API lines, a summary per cycle, no secrets and no meter bodies', async () => {
    const service = await start('info');
    await waitUntilHealthy(service);

    // Requests: ids given (sane), an id refused (not sane), none; the key in either header; a wrong key.
    const create = (i: number) => ({ meter_id: String(ports[i]), address: '127.0.0.1', port: ports[i] });
    const calls = [
      await call(service, 'POST', '/meters', { 'x-api-key': KEY, 'x-request-id': 'client-req-1' }, create(0)),
      await call(service, 'POST', '/meters', { authorization: `Bearer ${KEY}`, 'x-request-id': 'trace:7f3a.2-b' }, create(1)),
      await call(service, 'POST', '/meters', { 'x-api-key': KEY, 'x-request-id': 'no spaces, "quotes" or <tags>' }, create(2)),
      await call(service, 'GET', '/meters/absent', { 'x-api-key': KEY, 'x-request-id': 'x'.repeat(129) }),
      await call(service, 'GET', '/meters', { 'x-api-key': WRONG_KEY }),
      await call(service, 'POST', '/meters', { authorization: `Bearer ${WRONG_KEY}` }, { meter_id: 'nope' }),
    ];
    expect(calls.map((c) => c.status)).toEqual([201, 201, 201, 404, 401, 401]);
    expect(calls[0].requestId).toBe('client-req-1');
    expect(calls[1].requestId).toBe('trace:7f3a.2-b');
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    for (const made of calls.slice(2)) expect(made.requestId).toMatch(uuid);
    expect(new Set(calls.map((c) => c.requestId)).size).toBe(calls.length);

    // A cycle over the three meters: two answer, one answers 500.
    const cycle = await waitFor(
      'a cycle line over the three meters',
      () => parse(service.stdout()).find((line) => line.cycle?.meters === 3),
      service,
    );
    expect(cycle).toMatchObject({ level: 'info', context: 'PollingService', cycle: { meters: 3, ok: 2, failed: 1, stored: 2 } });
    expect(cycle.cycle!.duration_ms).toEqual(expect.any(Number));
    expect(cycle.cycle!.skipped_ticks).toEqual(expect.any(Number));
    expect(cycle.msg).toMatch(/^cycle: 3 meters, 2 ok, 1 failed, \d+ ms/);
    expect(cycle.reqId).toBeUndefined();

    // A line logged while a request is handled (readiness turning 503) carries that request's id.
    await proxy.cut();
    const probe = await call(service, 'GET', '/health/ready', { 'x-request-id': 'probe-during-outage' });
    expect(probe).toEqual({ status: 503, requestId: 'probe-during-outage' });
    const notReady = await waitFor(
      'the not-ready line',
      () => parse(service.stdout()).find((line) => line.msg.startsWith('not ready')),
      service,
    );
    expect(notReady).toMatchObject({
      level: 'warn',
      context: 'HealthController',
      reqId: 'probe-during-outage',
      not_ready: ['database'],
    });
    await proxy.restore();
    await stop(service);

    const lines = parse(service.stdout());
    // Nothing but JSON lines: not even TypeORM's (the pool losing its connections at the cut) go elsewhere.
    expect(service.output().length).toBe(service.stdout().length);
    // Nest's own lines and the services' Logger calls are JSON too.
    expect(lines.find((line) => line.context === 'NestApplication')?.msg).toBe('Nest application successfully started');
    expect(lines.some((line) => line.context === 'Bootstrap' && line.msg.startsWith('SIGTERM'))).toBe(true);
    for (const line of lines) {
      expect({ line: line.msg, level: typeof line.level, time: Number.isNaN(Date.parse(line.time)) }).toEqual({
        line: line.msg,
        level: 'string',
        time: false,
      });
    }
    // One line per API request, with its id, equal to the answer's header.
    const requestLines = lines.filter((line) => line.req !== undefined);
    for (const made of calls) {
      const own = requestLines.filter((line) => line.reqId === made.requestId);
      expect({ id: made.requestId, lines: own.length }).toEqual({ id: made.requestId, lines: 1 });
      expect(own[0].req?.id).toBe(made.requestId);
      expect(own[0].res?.statusCode).toBe(made.status);
    }
    expect(requestLines.find((line) => line.reqId === 'client-req-1')?.msg).toBe('POST /meters 201');
    for (const line of requestLines) expect(line.reqId).toBe(line.req?.id);

    // Nothing secret, nothing a meter sent, in anything the process printed.
    const everything = service.output();
    for (const secret of [KEY, WRONG_KEY, database.url, proxy.urlThrough(database.url)]) {
      expect({ secret, logged: everything.includes(secret) }).toEqual({ secret, logged: false });
    }
    const password = decodeURIComponent(new URL(database.url).password);
    if (password !== '') expect(everything).not.toContain(`:${password}@`);
    expect(everything).not.toMatch(/authorization|x-api-key|"kW"|"A":/i);
  }, 120_000);

  it('LOG_LEVEL=warn leaves out info lines (requests, cycles, start) and keeps warnings', async () => {
    const service = await start('warn');
    await waitUntilHealthy(service);
    await call(service, 'GET', '/meters', { 'x-api-key': KEY });
    // Cycles run (the meters are asked), yet no summary line shows.
    const asked = ports.map((port) => sim.requestsOf(port));
    const polledTwice = () => ports.every((port, i) => sim.requestsOf(port) >= asked[i] + 2);
    await waitFor('two more polls of each meter', () => (polledTwice() ? true : undefined), service);

    await proxy.cut();
    expect((await call(service, 'GET', '/health/ready')).status).toBe(503);
    await waitFor('the not-ready warning', () => parse(service.stdout()).find((line) => line.msg.startsWith('not ready')), service);
    await proxy.restore();
    await stop(service);

    const lines = parse(service.stdout());
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter((line) => !['warn', 'error', 'fatal'].includes(line.level))).toEqual([]);
    expect(lines.some((line) => line.cycle !== undefined || line.req !== undefined)).toBe(false);
  }, 120_000);
});
