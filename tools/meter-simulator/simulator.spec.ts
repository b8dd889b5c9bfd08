import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { fork } from 'node:child_process';
import {
  DEFAULT_HUGE_BYTES,
  Fault,
  HOSTILE_MARKER,
  Simulator,
  SimulatorOptions,
  openFileLimit,
  startSimulator,
} from './simulator';
import { UsageError, parseCli, parseFault, parsePortList } from './main';

const HOST = '127.0.0.1';
const DECIMAL = /^\d+(\.\d+)?$/;
const KWH = /^\d+(\.\d{1,3})?$/;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  elapsedMs: number;
  reusedSocket: boolean;
}

/** The port is the meter's identity, so tests need real free ports rather than port 0. */
async function freePorts(count: number, host = HOST): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, host, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

function request(
  url: string,
  { method = 'GET', timeoutMs = 2000, agent = false as http.Agent | false } = {},
): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          elapsedMs: Date.now() - started,
          reusedSocket: req.reusedSocket,
        }),
      );
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
    req.on('error', reject);
    req.end();
  });
}

async function readJson(url: string): Promise<Record<string, unknown>> {
  const answer = await request(url);
  expect(answer.status).toBe(200);
  return JSON.parse(answer.body) as Record<string, unknown>;
}

async function readCounter(sim: Simulator, port: number): Promise<number> {
  const body = await readJson(sim.urlOf(port));
  expect(body.kW).toMatch(KWH);
  return Number(body.kW);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const running: Simulator[] = [];
async function start(options: SimulatorOptions): Promise<Simulator> {
  const sim = await startSimulator(options);
  running.push(sim);
  expect(sim.failedPorts).toEqual([]);
  return sim;
}

afterAll(async () => {
  await Promise.all(running.map((sim) => sim.stop()));
});

describe('per-port layout, healthy meters', () => {
  let sim: Simulator;
  let ports: number[];

  beforeAll(async () => {
    ports = await freePorts(3);
    sim = await start({ ports, idOf: (port) => `m-${port}` });
  });

  it('answers GET / with the reading as JSON strings', async () => {
    const answer = await request(sim.urlOf(ports[0]));
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json');
    const body = JSON.parse(answer.body) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['id', 'A', 'kW']);
    expect(body.id).toBe(`m-${ports[0]}`);
    expect(body.A).toMatch(DECIMAL);
    expect(body.kW).toMatch(KWH);
    expect(Number(body.kW)).toBeGreaterThanOrEqual(1000);
    expect(Number(body.kW)).toBeLessThanOrEqual(100_001);
  });

  it('serves every port as its own meter at http://host:port/', async () => {
    expect(sim.ports).toEqual(ports);
    expect(sim.urlOf(ports[1])).toBe(`http://${HOST}:${ports[1]}/`);
    const bodies = await Promise.all(ports.map((port) => readJson(sim.urlOf(port))));
    expect(bodies.map((b) => b.id)).toEqual(ports.map((port) => `m-${port}`));
  });

  it('never lets the counter go down and reports it through counterOf', async () => {
    const first = await readCounter(sim, ports[2]);
    const second = await readCounter(sim, ports[2]);
    expect(second).toBeGreaterThanOrEqual(first);
    expect(Number(sim.counterOf(ports[2]))).toBeGreaterThanOrEqual(second);
  });

  it('answers 404 outside / and 405 for other methods, without counting them', async () => {
    const port = ports[1];
    const before = sim.requestsOf(port);
    expect((await request(`http://${HOST}:${port}/other`)).status).toBe(404);
    const post = await request(sim.urlOf(port), { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET');
    expect(sim.requestsOf(port)).toBe(before);
  });

  it('counts GET requests per meter', async () => {
    const port = ports[0];
    const before = sim.requestsOf(port);
    await Promise.all([1, 2, 3].map(() => request(sim.urlOf(port))));
    expect(sim.requestsOf(port)).toBe(before + 3);
    expect(sim.requestsOf(ports[1] + 100_000)).toBe(0);
  });
});

describe('counter growth', () => {
  it('grows by A * 230 V * hours / 1000, with simulated time sped up', async () => {
    const [port] = await freePorts(1);
    // 1 ms of real time is one simulated hour
    const sim = await start({ ports: [port], speedup: 3_600_000, startKwh: () => 500 });
    const readFrom = Date.now();
    const first = await readCounter(sim, port);
    await sleep(40);
    const second = await readCounter(sim, port);
    const hoursUpperBound = Date.now() - readFrom;
    // A stays within 0.2..38 for every meter, so the growth lies between these bounds
    expect(second - first).toBeGreaterThanOrEqual((0.2 * 230 * 39) / 1000);
    expect(second - first).toBeLessThanOrEqual((38 * 230 * hoursUpperBound) / 1000);
    expect(first).toBeGreaterThanOrEqual(500);
  });

  it('starts at startKwh and hardly moves in real time', async () => {
    const [port] = await freePorts(1);
    const sim = await start({ ports: [port], startKwh: () => 1234.5 });
    const counter = await readCounter(sim, port);
    expect(counter).toBeGreaterThanOrEqual(1234.5);
    expect(counter).toBeLessThan(1234.6);
  });
});

describe('emulator layout', () => {
  let sim: Simulator;
  let emulatorPort: number;

  beforeAll(async () => {
    [emulatorPort] = await freePorts(1);
    sim = await start({ emulatorPort, ports: [9000, 9001] });
  });

  it('reads meter <p> at GET /<p> on one server', async () => {
    expect(sim.urlOf(9000)).toBe(`http://${HOST}:${emulatorPort}/9000`);
    expect(sim.ports).toEqual([9000, 9001]);
    const answer = await request(sim.urlOf(9001));
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json');
    const body = JSON.parse(answer.body) as Record<string, unknown>;
    expect(body.id).toBe('9001');
    expect(body.kW).toMatch(KWH);
    expect((await readJson(`http://${HOST}:${emulatorPort}/9000/`)).id).toBe('9000');
    expect(sim.requestsOf(9001)).toBe(1);
  });

  it('answers 404 for meters it does not know', async () => {
    expect((await request(`http://${HOST}:${emulatorPort}/9002`)).status).toBe(404);
    expect((await request(`http://${HOST}:${emulatorPort}/`)).status).toBe(404);
    expect((await request(`http://${HOST}:${emulatorPort}/abc`)).status).toBe(404);
  });

  it('refuses by destroying the connection', async () => {
    sim.setFault(9001, { kind: 'refuse' });
    await expect(request(sim.urlOf(9001))).rejects.toMatchObject({ code: 'ECONNRESET' });
    sim.setFault(9001, { kind: 'healthy' });
    expect((await readJson(sim.urlOf(9001))).id).toBe('9001');
  });

  it('rejects setFault for an unknown meter', () => {
    expect(() => sim.setFault(9002, { kind: 'hang' })).toThrow(RangeError);
  });
});

describe('public emulator', () => {
  let sim: Simulator;
  let emulatorPort: number;

  beforeAll(async () => {
    [emulatorPort] = await freePorts(1);
    sim = await start({ emulatorPort, publicEmulator: true });
  });

  it('answers any numeric path exactly like the public emulator', async () => {
    const amps = new Set<string>();
    for (let i = 0; i < 40; i += 1) {
      const answer = await request(`http://${HOST}:${emulatorPort}/12345`);
      expect(answer.status).toBe(200);
      expect(answer.headers['content-type']).toBe('application/json');
      const body = JSON.parse(answer.body) as Record<string, unknown>;
      expect(Object.keys(body)).toEqual(['id', 'A', 'kW']);
      expect(body.id).toBe('12345');
      expect(body.kW).toBe('22');
      expect(body.A).toMatch(/^(\d|[1-4]\d|50)$/);
      amps.add(body.A as string);
    }
    expect(amps.size).toBeGreaterThan(1);
    expect(sim.requestsOf(12345)).toBe(40);
    expect(sim.counterOf(12345)).toBe('22');
  });

  it('redirects a trailing slash and answers 404 elsewhere', async () => {
    const answer = await request(`http://${HOST}:${emulatorPort}/9000/`);
    expect(answer.status).toBe(307);
    expect(answer.headers.location).toBe(`http://${HOST}:${emulatorPort}/9000`);
    const notFound = await request(`http://${HOST}:${emulatorPort}/`);
    expect(notFound.status).toBe(404);
    expect(JSON.parse(notFound.body)).toEqual({ detail: 'Not Found' });
  });

  it('takes faults for any port', async () => {
    sim.setFault(9100, { kind: 'wrong-id', id: 'other' });
    const body = await readJson(sim.urlOf(9100));
    expect(body).toMatchObject({ id: 'other', kW: '22' });
  });
});

describe('faults in the per-port layout', () => {
  let sim: Simulator;
  let ports: number[];
  let nextPort = 0;
  const meter = (): number => ports[nextPort++];

  beforeAll(async () => {
    ports = await freePorts(14);
    sim = await start({ ports });
  });

  it('hang: accepts the connection and never answers', async () => {
    const port = meter();
    sim.setFault(port, { kind: 'hang' });
    const started = Date.now();
    await expect(request(sim.urlOf(port), { timeoutMs: 300 })).rejects.toMatchObject({ code: 'CLIENT_TIMEOUT' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(sim.requestsOf(port)).toBe(1);
  });

  it('slow: answers normally after delayMs', async () => {
    const port = meter();
    sim.setFault(port, { kind: 'slow', delayMs: 250 });
    const answer = await request(sim.urlOf(port));
    expect(answer.elapsedMs).toBeGreaterThanOrEqual(240);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ id: String(port) });
  });

  it('refuse: stops listening, and any other fault listens again', async () => {
    const port = meter();
    sim.setFault(port, { kind: 'refuse' });
    await expect(request(sim.urlOf(port))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    sim.setFault(port, { kind: 'healthy' });
    await sim.settle();
    expect((await readJson(sim.urlOf(port))).id).toBe(String(port));
  });

  it('refuse: also drops kept-alive connections', async () => {
    const port = meter();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect((await request(sim.urlOf(port), { agent })).status).toBe(200);
      sim.setFault(port, { kind: 'refuse' });
      await expect(request(sim.urlOf(port), { agent })).rejects.toHaveProperty('code');
    } finally {
      agent.destroy();
      sim.setFault(port, { kind: 'healthy' });
    }
  });

  it('status: answers that status with a small text body', async () => {
    const port = meter();
    sim.setFault(port, { kind: 'status', status: 500 });
    const answer = await request(sim.urlOf(port));
    expect(answer.status).toBe(500);
    expect(answer.headers['content-type']).toMatch(/^text\/plain/);
    expect(answer.body).toBe('Internal Server Error');
    sim.setFault(port, { kind: 'status', status: 401, body: 'secret page' });
    const custom = await request(sim.urlOf(port));
    expect(custom.status).toBe(401);
    expect(custom.body).toBe('secret page');
  });

  it('garbage: 200 with a body that is not JSON', async () => {
    const port = meter();
    sim.setFault(port, { kind: 'garbage' });
    const answer = await request(sim.urlOf(port));
    expect(answer.status).toBe(200);
    expect(() => JSON.parse(answer.body)).toThrow(SyntaxError);
  });

  it('wrong-id: a valid reading under another id', async () => {
    const port = meter();
    sim.setFault(port, { kind: 'wrong-id', id: 'xyz' });
    const body = await readJson(sim.urlOf(port));
    expect(body.id).toBe('xyz');
    expect(body.A).toMatch(DECIMAL);
    expect(body.kW).toMatch(KWH);
  });

  it('redirect: 302 with Location', async () => {
    const port = meter();
    sim.setFault(port, { kind: 'redirect', location: 'http://127.0.0.1:1/' });
    const answer = await request(sim.urlOf(port));
    expect(answer.status).toBe(302);
    expect(answer.headers.location).toBe('http://127.0.0.1:1/');
    sim.setFault(port, { kind: 'redirect', location: 'http://127.0.0.1:2/', status: 308 });
    const permanent = await request(sim.urlOf(port));
    expect(permanent.status).toBe(308);
    expect(permanent.headers.location).toBe('http://127.0.0.1:2/');
    expect(() => sim.setFault(port, { kind: 'redirect', location: '/', status: 200 })).toThrow(RangeError);
  });

  it('bad-value: the field carries the value verbatim', async () => {
    const port = meter();
    const values: unknown[] = ['NaN', '-1', '1e400', '', '44 325', 12, null];
    for (const value of values) {
      sim.setFault(port, { kind: 'bad-value', field: 'kW', value });
      const answer = await request(sim.urlOf(port));
      expect(answer.body).toContain(`"kW":${JSON.stringify(value)}`);
      expect(JSON.parse(answer.body)).toMatchObject({ id: String(port), kW: value });
    }
    sim.setFault(port, { kind: 'bad-value', field: 'A', value: undefined });
    expect(Object.keys(await readJson(sim.urlOf(port)))).toEqual(['id', 'kW']);
  });

  it('replace: the counter restarts near zero and keeps growing', async () => {
    const port = meter();
    expect(await readCounter(sim, port)).toBeGreaterThanOrEqual(1000);
    sim.setFault(port, { kind: 'replace' });
    const afterReplace = await readCounter(sim, port);
    expect(afterReplace).toBeLessThanOrEqual(5.01);
    const later = await readCounter(sim, port);
    expect(later).toBeGreaterThanOrEqual(afterReplace);
    expect(later).toBeLessThan(1000);
  });

  it('replace: starts from the given startKwh', async () => {
    const port = meter();
    sim.setFault(port, { kind: 'replace', startKwh: 10 });
    expect(Number(sim.counterOf(port))).toBeGreaterThanOrEqual(10);
    const counter = await readCounter(sim, port);
    expect(counter).toBeGreaterThanOrEqual(10);
    expect(counter).toBeLessThan(10.01);
  });

  it('misread: one answer below the previous one, then the true counter again', async () => {
    const port = meter();
    const before = await readCounter(sim, port);
    sim.setFault(port, { kind: 'misread' });
    const misread = await readCounter(sim, port);
    // the counter is rendered with 3 decimals, so half of it is rounded once more
    expect(misread).toBeCloseTo(before / 2, 2);
    expect(misread).toBeLessThan(before);
    expect(Number(sim.counterOf(port))).toBeGreaterThanOrEqual(before);
    const recovered = await readCounter(sim, port);
    expect(recovered).toBeGreaterThanOrEqual(before);
    expect(await readCounter(sim, port)).toBeGreaterThanOrEqual(recovered);
  });

  it('misread: reports the given value once', async () => {
    const port = meter();
    const before = await readCounter(sim, port);
    sim.setFault(port, { kind: 'misread', value: 7 });
    expect(await readCounter(sim, port)).toBe(7);
    expect(await readCounter(sim, port)).toBeGreaterThanOrEqual(before);
  });

  it('rejects invalid faults and unknown ports', () => {
    expect(() => sim.setFault(ports[0], { kind: 'status', status: 42 })).toThrow(RangeError);
    expect(() => sim.setFault(ports[0], { kind: 'slow', delayMs: -1 })).toThrow(RangeError);
    expect(() => sim.setFault(ports[0], { kind: 'nope' } as unknown as Fault)).toThrow(TypeError);
    expect(() => sim.setFault(1, { kind: 'hang' })).toThrow(RangeError);
  });
});

interface Streamed {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  head: Buffer;
  tail: Buffer;
  error: string | null;
  elapsedMs: number;
}

/**
 * Reads an answer chunk by chunk without keeping it: the first and last 64 bytes, the byte count, and how it ended.
 * Stops (destroying the request) after `maxBytes` or `timeoutMs`.
 */
function stream(url: string, { maxBytes = Infinity, timeoutMs = 10_000 } = {}): Promise<Streamed> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false }, (res) => {
      const result: Streamed = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        bytes: 0,
        head: Buffer.alloc(0),
        tail: Buffer.alloc(0),
        error: null,
        elapsedMs: 0,
      };
      const done = (error: string | null) => {
        clearTimeout(timer);
        result.error ??= error;
        result.elapsedMs = Date.now() - started;
        resolve(result);
      };
      const timer = setTimeout(() => {
        result.error = 'client timeout';
        req.destroy();
      }, timeoutMs);
      res.on('data', (chunk: Buffer) => {
        if (result.head.length < 64) result.head = Buffer.concat([result.head, chunk]).subarray(0, 64);
        result.tail = Buffer.concat([result.tail, chunk]).subarray(-64);
        result.bytes += chunk.length;
        if (result.bytes >= maxBytes) {
          result.error = 'client stopped';
          req.destroy();
        }
      });
      res.on('end', () => done(null));
      res.on('error', (err) => done((err as NodeJS.ErrnoException).code ?? err.message));
      res.on('close', () => done(res.complete ? null : 'aborted'));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('hostile faults in the per-port layout', () => {
  let sim: Simulator;
  let ports: number[];
  let nextPort = 0;
  const meter = (fault: Fault): number => {
    const port = ports[nextPort++];
    sim.setFault(port, fault);
    return port;
  };

  beforeAll(async () => {
    ports = await freePorts(16);
    sim = await start({ ports });
  });

  it('drip: sends the headers at once, then a valid reading one byte per interval', async () => {
    const port = meter({ kind: 'drip', intervalMs: 100 });
    const answer = await stream(sim.urlOf(port), { timeoutMs: 450 });
    expect(answer.status).toBe(200);
    expect(answer.error).toBe('client timeout');
    expect(Number(answer.headers['content-length'])).toBeGreaterThan(20);
    expect(answer.bytes).toBeGreaterThanOrEqual(2);
    expect(answer.bytes).toBeLessThanOrEqual(5);
    expect(answer.head.toString()).toBe('{"id":'.slice(0, answer.bytes));
  });

  it('drip: the whole body, once dripped, is a reading with the marker outside its fields', async () => {
    const port = meter({ kind: 'drip', intervalMs: 1 });
    const answer = await request(sim.urlOf(port), { timeoutMs: 5000 });
    expect(JSON.parse(answer.body)).toMatchObject({ id: String(port), note: HOSTILE_MARKER });
  });

  it('huge: streams 100 MiB (a valid reading, then spaces) with its length declared', async () => {
    const port = meter({ kind: 'huge' });
    const answer = await stream(sim.urlOf(port), { timeoutMs: 30_000 });
    expect(answer.error).toBeNull();
    expect(answer.status).toBe(200);
    expect(Number(answer.headers['content-length'])).toBe(DEFAULT_HUGE_BYTES);
    expect(answer.bytes).toBe(DEFAULT_HUGE_BYTES);
    expect(answer.head.toString()).toMatch(new RegExp(`^\\{"id":"${port}"`));
    expect(answer.tail.toString()).toBe(' '.repeat(64));
  }, 40_000);

  it('huge: is streamed as the client reads, never built in memory', async () => {
    // In a process of its own, so that its memory is the simulator's alone.
    const [port] = await freePorts(1);
    const child = fork(path.join(__dirname, 'main.ts'), ['--ports', String(port), '--fault', `${port}=huge`], {
      cwd: path.resolve(__dirname, '../..'),
      execArgv: ['-r', require.resolve('ts-node/register/transpile-only')],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const next = () => new Promise<{ type: string; value?: NodeJS.MemoryUsage }>((resolve) => child.once('message', resolve));
    const held = async () => {
      child.send({ type: 'memoryUsage' });
      const { value } = await next();
      return (value as NodeJS.MemoryUsage).heapUsed + (value as NodeJS.MemoryUsage).arrayBuffers;
    };
    try {
      expect(await next()).toMatchObject({ type: 'ready' });
      const before = await held();
      // Read 4 MiB, then stop reading: a body built in memory would now sit in the simulator, 100 MiB of it; a
      // streamed one stops at what the socket buffers hold.
      const req = http.get(`http://${HOST}:${port}/`, { agent: false });
      req.on('error', () => undefined);
      await new Promise<void>((resolve) =>
        req.on('response', (res) => {
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes >= 4 * 1024 * 1024 && !res.isPaused()) {
              res.pause();
              resolve();
            }
          });
        }),
      );
      await sleep(300);
      const whilePaused = await held();
      req.destroy();
      expect(whilePaused - before).toBeLessThan(DEFAULT_HUGE_BYTES / 4);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  }, 20_000);

  it('huge: a size below the reading cuts the reading itself', async () => {
    const port = meter({ kind: 'huge', bytes: 5 });
    const answer = await request(sim.urlOf(port));
    expect(answer.body).toBe('{"id"');
    expect(answer.headers['content-length']).toBe('5');
  });

  it('endless: chunked, no length, and still sending after 4 MiB; the meter answers again afterwards', async () => {
    const port = meter({ kind: 'endless' });
    const answer = await stream(sim.urlOf(port), { maxBytes: 4 * 1024 * 1024 });
    expect(answer.error).toBe('client stopped');
    expect(answer.headers['content-length']).toBeUndefined();
    expect(answer.headers['transfer-encoding']).toBe('chunked');
    expect(answer.head.toString()).toMatch(/^\{"id":/);
    sim.setFault(port, { kind: 'healthy' });
    expect((await readJson(sim.urlOf(port))).id).toBe(String(port));
  });

  it('cut: half the declared body, then the connection closes', async () => {
    const port = meter({ kind: 'cut' });
    const answer = await stream(sim.urlOf(port));
    expect(answer.status).toBe(200);
    expect(answer.error).not.toBeNull();
    expect(answer.bytes).toBe(Math.floor(Number(answer.headers['content-length']) / 2));
  });

  it('html: a 200 web page', async () => {
    const port = meter({ kind: 'html' });
    const answer = await request(sim.urlOf(port));
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^text\/html/);
    expect(answer.body).toMatch(/^<!DOCTYPE html>/);
    expect(answer.body).toContain(HOSTILE_MARKER);
  });

  it('empty: a 200 with no body', async () => {
    const port = meter({ kind: 'empty' });
    const answer = await request(sim.urlOf(port));
    expect(answer.status).toBe(200);
    expect(answer.headers['content-length']).toBe('0');
    expect(answer.body).toBe('');
  });

  it('invalid-utf8: a reading when decoded leniently, not UTF-8 when decoded strictly', async () => {
    const port = meter({ kind: 'invalid-utf8' });
    const bytes = await new Promise<Buffer>((resolve, reject) => {
      http
        .get(sim.urlOf(port), { agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve(Buffer.concat(chunks)));
        })
        .on('error', reject);
    });
    expect(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes)).toThrow(/not valid/);
    expect(JSON.parse(bytes.toString('utf8'))).toMatchObject({ id: String(port), kW: expect.stringMatching(KWH) });
  });

  it('deep-json: kW nested 30,000 arrays deep, under 64 KiB', async () => {
    const port = meter({ kind: 'deep-json' });
    const answer = await request(sim.urlOf(port));
    expect(answer.body.length).toBeLessThan(64 * 1024);
    expect(answer.body).toContain(`"kW":${'['.repeat(30_000)}]`);
    expect(answer.body).not.toContain(`"kW":${'['.repeat(30_001)}`);
  });

  it('json-array: the reading wrapped in an array', async () => {
    const port = meter({ kind: 'json-array' });
    const body = JSON.parse((await request(sim.urlOf(port))).body) as unknown[];
    expect(body).toEqual([expect.objectContaining({ id: String(port), kW: expect.stringMatching(KWH) })]);
  });

  it('long-number: kW a JSON number of 400 digits (or as many as asked)', async () => {
    const port = meter({ kind: 'long-number' });
    expect((await request(sim.urlOf(port))).body).toMatch(/"kW":9{400}\}$/);
    sim.setFault(port, { kind: 'long-number', digits: 25 });
    expect((await request(sim.urlOf(port))).body).toMatch(/"kW":9{25}\}$/);
  });

  it('counts connections, with or without a request', async () => {
    const port = meter({ kind: 'healthy' });
    expect(sim.connectionsOf(port)).toBe(0);
    const socket = net.connect(port, HOST);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.destroy();
    await request(sim.urlOf(port));
    while (sim.connectionsOf(port) < 2) await sleep(5);
    expect(sim.connectionsOf(port)).toBe(2);
    expect(sim.requestsOf(port)).toBe(1);
  });

  it('stop() ends dripping and endless answers at once', async () => {
    const [dripPort, endlessPort] = await freePorts(2);
    const own = await startSimulator({ ports: [dripPort, endlessPort] });
    own.setFault(dripPort, { kind: 'drip' });
    own.setFault(endlessPort, { kind: 'endless' });
    const drip = stream(own.urlOf(dripPort));
    const endless = stream(own.urlOf(endlessPort));
    while (own.requestsOf(dripPort) + own.requestsOf(endlessPort) < 2) await sleep(5);
    const started = Date.now();
    await own.stop();
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await drip).error).not.toBeNull();
    expect((await endless).error).not.toBeNull();
  });

  it('rejects hostile faults with bad options', () => {
    expect(() => sim.setFault(ports[0], { kind: 'drip', intervalMs: 0 })).toThrow(RangeError);
    expect(() => sim.setFault(ports[0], { kind: 'huge', bytes: -1 })).toThrow(RangeError);
    expect(() => sim.setFault(ports[0], { kind: 'deep-json', depth: 0 })).toThrow(RangeError);
    expect(() => sim.setFault(ports[0], { kind: 'long-number', digits: 1.5 })).toThrow(RangeError);
  });
});

describe('connections and lifecycle', () => {
  it('keeps idle connections open by default and honours keepAliveTimeoutMs', async () => {
    const [kept, short] = await freePorts(2);
    const keepSim = await start({ ports: [kept] });
    const shortSim = await start({ ports: [short], keepAliveTimeoutMs: 100 });
    const agent = new http.Agent({ keepAlive: true });
    try {
      const first = await request(keepSim.urlOf(kept), { agent });
      expect(first.headers['keep-alive']).toBe('timeout=600');
      await request(shortSim.urlOf(short), { agent });
      await sleep(300);
      expect((await request(keepSim.urlOf(kept), { agent })).reusedSocket).toBe(true);
      expect((await request(shortSim.urlOf(short), { agent })).reusedSocket).toBe(false);
    } finally {
      agent.destroy();
    }
  });

  it('stop() resolves with a hung request open, and ends that request', async () => {
    const [port] = await freePorts(1);
    const sim = await startSimulator({ ports: [port] });
    sim.setFault(port, { kind: 'hang' });
    const hung = request(sim.urlOf(port), { timeoutMs: 10_000 });
    hung.catch(() => undefined);
    while (sim.requestsOf(port) === 0) await sleep(5);
    const started = Date.now();
    await sim.stop();
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(sim.stop()).resolves.toBeUndefined();
    await expect(hung).rejects.toMatchObject({ code: 'ECONNRESET' });
    await expect(request(`http://${HOST}:${port}/`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('reports ports it cannot bind instead of throwing', async () => {
    const [taken, free] = await freePorts(2);
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(taken, HOST, resolve));
    try {
      const sim = await startSimulator({ ports: [taken, free], bindRetries: 1 });
      running.push(sim);
      expect(sim.ports).toEqual([free]);
      expect(sim.failedPorts).toEqual([{ port: taken, error: expect.stringContaining('EADDRINUSE') }]);
      expect(() => sim.setFault(taken, { kind: 'hang' })).toThrow(RangeError);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('serves on IPv6 loopback with a bracketed URL', async () => {
    const [port] = await freePorts(1, '::1');
    const sim = await start({ host: '::1', ports: [port] });
    expect(sim.urlOf(port)).toBe(`http://[::1]:${port}/`);
    expect((await readJson(sim.urlOf(port))).id).toBe(String(port));
  });

  it('rejects options that cannot work', async () => {
    await expect(startSimulator({})).rejects.toThrow(TypeError);
    await expect(startSimulator({ ports: [0] })).rejects.toThrow(RangeError);
    await expect(startSimulator({ ports: [9000], publicEmulator: true })).rejects.toThrow(TypeError);
  });

  it('reads the open-file limit of this process', () => {
    const limit = openFileLimit();
    expect(limit.soft).toBeGreaterThan(0);
    expect(limit.hard).toBeGreaterThanOrEqual(limit.soft);
  });
});

describe('command line', () => {
  it('parses port ranges and lists', () => {
    expect(parsePortList('9000-9002,9005, 9001')).toEqual([9000, 9001, 9002, 9005]);
    expect(() => parsePortList('9002-9000')).toThrow(UsageError);
    expect(() => parsePortList('70000')).toThrow(UsageError);
    expect(() => parsePortList('')).toThrow(UsageError);
  });

  it('parses faults', () => {
    expect(parseFault('hang')).toEqual({ kind: 'hang' });
    expect(parseFault('slow:8000')).toEqual({ kind: 'slow', delayMs: 8000 });
    expect(parseFault('status:500')).toEqual({ kind: 'status', status: 500 });
    expect(parseFault('wrong-id:xyz')).toEqual({ kind: 'wrong-id', id: 'xyz' });
    expect(parseFault('redirect:http://127.0.0.1:1/x')).toEqual({ kind: 'redirect', location: 'http://127.0.0.1:1/x' });
    expect(parseFault('bad-value:kW:NaN')).toEqual({ kind: 'bad-value', field: 'kW', value: 'NaN' });
    expect(parseFault('bad-value:A:12')).toEqual({ kind: 'bad-value', field: 'A', value: 12 });
    expect(parseFault('bad-value:A:"12"')).toEqual({ kind: 'bad-value', field: 'A', value: '12' });
    expect(parseFault('bad-value:kW:null')).toEqual({ kind: 'bad-value', field: 'kW', value: null });
    expect(parseFault('replace')).toEqual({ kind: 'replace' });
    expect(parseFault('replace:3.5')).toEqual({ kind: 'replace', startKwh: 3.5 });
    expect(parseFault('misread:10')).toEqual({ kind: 'misread', value: 10 });
    expect(parseFault('drip')).toEqual({ kind: 'drip' });
    expect(parseFault('drip:250')).toEqual({ kind: 'drip', intervalMs: 250 });
    expect(parseFault('huge')).toEqual({ kind: 'huge' });
    expect(parseFault('huge:1048576')).toEqual({ kind: 'huge', bytes: 1048576 });
    expect(parseFault('deep-json:100')).toEqual({ kind: 'deep-json', depth: 100 });
    expect(parseFault('long-number:40')).toEqual({ kind: 'long-number', digits: 40 });
    for (const kind of ['endless', 'cut', 'html', 'empty', 'invalid-utf8', 'json-array'] as const) {
      expect(parseFault(kind)).toEqual({ kind });
    }
    expect(() => parseFault('cut:1')).toThrow(UsageError);
    expect(() => parseFault('drip:0')).toThrow(UsageError);
    expect(() => parseFault('slow')).toThrow(UsageError);
    expect(() => parseFault('hang:1')).toThrow(UsageError);
    expect(() => parseFault('explode')).toThrow(UsageError);
  });

  it('parses the options into a layout and faults per port', () => {
    expect(parseCli(['--ports', '9000-9001', '--fault', '9000-9001=refuse', '--speedup', '60'])).toEqual({
      options: { ports: [9000, 9001], speedup: 60 },
      faults: [
        { port: 9000, fault: { kind: 'refuse' } },
        { port: 9001, fault: { kind: 'refuse' } },
      ],
    });
    expect(parseCli(['--public-emulator', '8001'])).toEqual({
      options: { emulatorPort: 8001, publicEmulator: true },
      faults: [],
    });
    expect(() => parseCli([])).toThrow(UsageError);
    expect(() => parseCli(['--emulator', '8001'])).toThrow(UsageError);
    expect(() => parseCli(['--ports', '9000', '--bogus'])).toThrow(UsageError);
  });

  it('runs as a child process driven over IPC and exits 0 on SIGTERM', async () => {
    const [port] = await freePorts(1);
    const child = fork(path.join(__dirname, 'main.ts'), ['--ports', String(port), '--fault', `${port}=status:503`], {
      // ts-node reads the repository's tsconfig.json from the working directory
      cwd: path.resolve(__dirname, '../..'),
      execArgv: ['-r', require.resolve('ts-node/register/transpile-only')],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const died = exited.then((code) => {
      throw new Error(`simulator exited with ${code}: ${stderr}`);
    });
    died.catch(() => undefined);
    const nextMessage = () =>
      Promise.race([new Promise<Record<string, unknown>>((resolve) => child.once('message', resolve)), died]);
    try {
      expect(await nextMessage()).toMatchObject({ type: 'ready', meters: 1, layout: 'per-port' });
      expect(JSON.parse(stdout.split('\n')[0])).toEqual({
        ready: true,
        meters: 1,
        failedPorts: [],
        host: HOST,
        layout: 'per-port',
      });
      expect((await request(`http://${HOST}:${port}/`)).status).toBe(503);

      child.send({ type: 'setFault', port, fault: { kind: 'healthy' }, ref: 1 });
      expect(await nextMessage()).toEqual({ type: 'ok', ref: 1 });
      expect((await request(`http://${HOST}:${port}/`)).status).toBe(200);
      child.send({ type: 'requestsOf', port });
      expect(await nextMessage()).toEqual({ type: 'ok', value: 2 });
      child.send({ type: 'connectionsOf', port });
      expect(await nextMessage()).toEqual({ type: 'ok', value: 2 });
      child.send({ type: 'memoryUsage', ref: 2 });
      expect(await nextMessage()).toMatchObject({ type: 'ok', ref: 2, value: { rss: expect.any(Number) } });
      child.send({ type: 'setFault', port: 1, fault: { kind: 'hang' } });
      expect(await nextMessage()).toMatchObject({ type: 'error', message: expect.stringContaining('port 1') });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 15_000);
});
