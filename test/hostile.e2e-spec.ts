import { ChildProcess, fork } from 'node:child_process';
import * as path from 'node:path';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { HOSTILE_MARKER } from '../tools/meter-simulator/simulator';
import { freePorts } from './support/ports';
import { createTestApp, TestApp } from './support/test-app';

/**
 * SPEC 4 and 5.1 against hostile meters: a thousand of them, each on its own port, mixed among healthy ones, read
 * in one cycle. Healthy meters are still read within their deadline, the service's memory stays bounded, nothing a
 * hostile meter sent is stored or relayed, and each failure is recorded, with its reason, in that meter's health.
 *
 * The meters are served by the simulator in a child process, so the memory measured here is the service's own
 * (plus Jest's, constant during the cycle). Open files: one listener per meter there, one socket per meter here,
 * far below the 20,000 limit of each process.
 */

// A first cycle over 1,308 new connections costs the service about 2 CPU-seconds here (connect and close
// syscalls mostly), and this machine's two cores are shared: 64 requests in flight keep a wave's work well inside
// a 2 s deadline even at a load average of 10.
const TIMEOUT_MS = 2000;
const CONCURRENCY = 64;
const HEALTHY = 300;
const PER_KIND = 84;

/** [simulator fault, the failure kind the service must record, what the meter does] */
const HOSTILE: ReadonlyArray<readonly [string, string, string]> = [
  ['hang', 'timeout', 'accepts the request and never answers'],
  ['drip', 'timeout', 'sends headers, then a valid reading one byte a second'],
  ['huge', 'too-large', 'sends a 100 MB body (a valid reading padded with spaces), streamed'],
  ['endless', 'too-large', 'sends a body that never ends'],
  ['redirect', 'redirect', 'redirects to another meter port'],
  ['html', 'bad-payload', 'answers an HTML page'],
  ['empty', 'bad-payload', 'answers an empty body'],
  ['invalid-utf8', 'bad-payload', 'answers a reading with invalid UTF-8 in it'],
  ['deep-json', 'bad-payload', 'answers kW nested 30,000 arrays deep'],
  ['json-array', 'bad-payload', 'answers a reading wrapped in a JSON array'],
  ['long-number', 'bad-payload', 'answers kW as a 400-digit number'],
  ['cut', 'network', 'closes the connection mid-body'],
];

/** 'healthy' or the simulator fault a meter has. */
type Role = string;

interface MeterRow {
  meter_id: string;
  health_state: string;
  consecutive_failures: number;
  last_error: string | null;
  last_poll_duration_ms: number | null;
  readings: string;
}

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

const MB = 1024 * 1024;
const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

/** The meter simulator in a child process, driven over IPC (tools/meter-simulator/main.ts). */
class SimulatorProcess {
  private nextRef = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private stderr = '';
  private readonly exited: Promise<number | null>;

  private constructor(private readonly child: ChildProcess) {
    child.stderr?.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)));
    child.stdout?.resume();
    child.on('message', (message: { type: string; ref?: number; value?: unknown; message?: string }) => {
      const waiter = message.ref === undefined ? undefined : this.pending.get(message.ref);
      if (!waiter) return;
      this.pending.delete(message.ref as number);
      if (message.type === 'ok') waiter.resolve(message.value);
      else waiter.reject(new Error(message.message));
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    void this.exited.then((code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`simulator exited with ${code}: ${this.stderr}`));
      this.pending.clear();
    });
  }

  static async start(args: string[]): Promise<{ sim: SimulatorProcess; failedPorts: { port: number }[] }> {
    const root = path.resolve(__dirname, '..');
    const child = fork(path.join(root, 'tools/meter-simulator/main.ts'), args, {
      cwd: root,
      execArgv: ['-r', require.resolve('ts-node/register/transpile-only')],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const sim = new SimulatorProcess(child);
    const ready = await Promise.race([
      new Promise<{ failedPorts: { port: number }[] }>((resolve) =>
        child.on('message', (message: { type: string }) => {
          if (message.type === 'ready') resolve(message as unknown as { failedPorts: { port: number }[] });
        }),
      ),
      sim.exited.then((code) => {
        throw new Error(`simulator exited with ${code} before it was ready: ${sim.stderr}`);
      }),
    ]);
    return { sim, failedPorts: ready.failedPorts };
  }

  ask<T>(message: Record<string, unknown>): Promise<T> {
    const ref = this.nextRef++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(ref, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ ...message, ref });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(killer);
  }
}

/** A fixed shuffle (mulberry32), so hostile and healthy meters interleave the same way on every run. */
function shuffled<T>(items: T[], seed: number): T[] {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('Hostile meters (SPEC 4, 5.1): a thousand of them among healthy ones', () => {
  let t: TestApp;
  let sim: SimulatorProcess | undefined;
  let trapPort: number;
  const roleOf = new Map<string, Role>(); // meter_id (= port) -> role
  let rows: Map<string, MeterRow>;
  let summary: { meters: number; ok: number; failed: number; durationMs: number };
  let baseline: Memory;
  let peak: Memory;

  const metersOf = (role: Role) => [...roleOf].filter(([, r]) => r === role).map(([id]) => id);

  beforeAll(async () => {
    const started = Date.now();
    const ports = await freePorts(HEALTHY + HOSTILE.length * PER_KIND + 1);
    trapPort = ports[0];
    const roles = shuffled<Role>(
      [...Array<Role>(HEALTHY).fill('healthy'), ...HOSTILE.flatMap(([fault]) => Array<Role>(PER_KIND).fill(fault))],
      20251203,
    );
    const meterPorts = ports.slice(1);
    const faultArgs = HOSTILE.flatMap(([fault]) => {
      const list = meterPorts.filter((_, i) => roles[i] === fault).join(',');
      const spec = fault === 'redirect' ? `redirect:http://127.0.0.1:${trapPort}/` : fault;
      return ['--fault', `${list}=${spec}`];
    });
    const launched = await SimulatorProcess.start(['--ports', ports.join(','), ...faultArgs]);
    sim = launched.sim;
    const failed = new Set(launched.failedPorts.map((f) => f.port));
    // Another process may take a freed port before the simulator binds it: such a port is left out, not a failure.
    expect(failed.size).toBeLessThan(ports.length / 100);
    expect(failed.has(trapPort)).toBe(false);
    meterPorts.forEach((port, i) => {
      if (!failed.has(port)) roleOf.set(String(port), roles[i]);
    });

    t = await createTestApp('hostile', { POLL_TIMEOUT_MS: String(TIMEOUT_MS), POLL_CONCURRENCY: String(CONCURRENCY) });
    const bulk = await t
      .http()
      .post('/meters/bulk')
      .send([...roleOf.keys()].map((id) => ({ meter_id: id, address: '127.0.0.1', port: Number(id) })))
      .expect(200);
    expect(bulk.body.created_count).toBe(roleOf.size);
    console.log(
      `hostile: ${roleOf.size} meters (${metersOf('healthy').length} healthy, ${HOSTILE.length} hostile kinds), ` +
        `set up in ${Date.now() - started} ms`,
    );

    // The cycle, with the service's memory sampled throughout.
    baseline = process.memoryUsage();
    peak = { ...baseline };
    const sample = () => {
      const now = process.memoryUsage();
      for (const key of ['rss', 'heapUsed', 'external', 'arrayBuffers'] as const) peak[key] = Math.max(peak[key], now[key]);
    };
    const sampler = setInterval(sample, 10);
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const cpu = process.cpuUsage();
    try {
      summary = await t.polling.runCycle();
    } finally {
      clearInterval(sampler);
      lag.disable();
      sample();
    }
    const cpuUsed = process.cpuUsage(cpu);
    const cpuMs = Math.round((cpuUsed.user + cpuUsed.system) / 1000);
    const simulatorMemory = await sim.ask<Memory>({ type: 'memoryUsage' });
    console.log(
      `hostile cycle: ${summary.meters} meters, ${summary.ok} ok, ${summary.failed} failed in ${summary.durationMs} ms ` +
        `(deadline ${TIMEOUT_MS} ms, ${CONCURRENCY} in flight); service memory peak: ` +
        `rss ${mb(peak.rss)} (baseline ${mb(baseline.rss)}, +${mb(peak.rss - baseline.rss)}), ` +
        `heapUsed ${mb(peak.heapUsed)} (+${mb(peak.heapUsed - baseline.heapUsed)}), ` +
        `arrayBuffers ${mb(peak.arrayBuffers)} (+${mb(peak.arrayBuffers - baseline.arrayBuffers)}); ` +
        `event loop delay max ${Math.round(lag.max / 1e6)} ms; service CPU ${cpuMs} ms; ` +
        `simulator rss ${mb(simulatorMemory.rss)}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
    );

    const result: MeterRow[] = await t.dataSource.query(
      `SELECT m.meter_id, m.health_state, m.consecutive_failures, m.last_error, m.last_poll_duration_ms,
              (SELECT count(*) FROM readings r WHERE r.meter_id = m.meter_id) AS readings
         FROM meters m`,
    );
    rows = new Map(result.map((row) => [row.meter_id, row]));
  }, 90_000);

  afterAll(async () => {
    await t?.close();
    await sim?.stop();
  });

  it('reads every healthy meter within its deadline and stores one reading each', () => {
    const healthy = metersOf('healthy');
    expect(summary).toMatchObject({ meters: roleOf.size, ok: healthy.length, failed: roleOf.size - healthy.length });
    for (const id of healthy) {
      const row = rows.get(id) as MeterRow;
      expect({ id, state: row.health_state, readings: Number(row.readings), failures: row.consecutive_failures }).toEqual({
        id,
        state: 'up',
        readings: 1,
        failures: 0,
      });
      expect(row.last_poll_duration_ms).toBeLessThan(TIMEOUT_MS);
    }
    // The cycle ends: the meters that never finish (hang, drip) hold a slot for one deadline each, at least
    // 168 x 2 s / 64 slots = 5.3 s, and the rest took 3-9 s more at load averages of 7-12 here. Without a deadline
    // over the whole answer, one dripping meter alone would take over a minute (its reading, a byte a second).
    expect(summary.durationMs).toBeLessThan(30_000);
  });

  it('keeps the service memory bounded while 100 MB and endless bodies are offered', () => {
    // Generous bounds: one 100 MB body held would break the first, the bodies of all hostile meters held at once
    // (84 x 100 MB) would break all of them. Peak figures are printed above.
    expect(peak.rss - baseline.rss).toBeLessThan(200 * MB);
    expect(peak.arrayBuffers - baseline.arrayBuffers).toBeLessThan(64 * MB);
    expect(peak.heapUsed - baseline.heapUsed).toBeLessThan(150 * MB);
  });

  it.each(HOSTILE.map(([fault, kind, what]) => [fault, what, kind]))(
    '%s (%s): recorded as %s in every such meter, nothing stored, no meter content in the health',
    (fault, _what, kind) => {
      const ids = metersOf(fault);
      expect(ids.length).toBeGreaterThan(PER_KIND * 0.9);
      for (const id of ids) {
        const row = rows.get(id) as MeterRow;
        expect({ id, state: row.health_state, readings: Number(row.readings), failures: row.consecutive_failures }).toEqual({
          id,
          state: 'down',
          readings: 0,
          failures: 1,
        });
        expect(row.last_error).toMatch(new RegExp(`^${kind}: `));
        expect(row.last_error).not.toContain(HOSTILE_MARKER);
        expect(row.last_error).not.toMatch(/<|\d{41}|\uFFFD/);
        // A failing request never runs past its deadline (plus scheduling slack on a loaded machine).
        expect(row.last_poll_duration_ms).toBeLessThan(TIMEOUT_MS + 1000);
      }
    },
  );

  it('never follows a redirect: the port redirected to got no connection at all', async () => {
    expect(await (sim as SimulatorProcess).ask<number>({ type: 'connectionsOf', port: trapPort })).toBe(0);
    expect(await (sim as SimulatorProcess).ask<number>({ type: 'requestsOf', port: trapPort })).toBe(0);
  });

  it('answers live reads of hostile meters with 502/504 and its own message, never the meter body', async () => {
    const picks = HOSTILE.map(([fault, kind]) => ({ fault, kind, id: metersOf(fault)[0] }));
    const started = Date.now();
    const responses = await Promise.all(picks.map(({ id }) => t.http().get(`/meters/${id}/data`)));
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 3000);
    picks.forEach(({ fault, kind, id }, i) => {
      const { status, body, text } = responses[i];
      const expected = kind === 'timeout' ? 504 : 502;
      expect({ fault, status }).toEqual({ fault, status: expected });
      expect(body).toEqual({
        statusCode: expected,
        error: expected === 504 ? 'Gateway Timeout' : 'Bad Gateway',
        message: expect.stringMatching(new RegExp(`^${kind}: `)),
      });
      expect(text).not.toContain(HOSTILE_MARKER);
      expect(text).not.toMatch(/<|\d{41}|\uFFFD|\\ufffd/);
      expect(text.length).toBeLessThan(400);
      expect(Number(rows.get(id)?.readings)).toBe(0);
    });
    const [{ count }] = await t.dataSource.query(
      'SELECT count(*) AS count FROM readings WHERE NOT (meter_id = ANY($1))',
      [metersOf('healthy')],
    );
    expect(Number(count)).toBe(0);
    expect(await (sim as SimulatorProcess).ask<number>({ type: 'connectionsOf', port: trapPort })).toBe(0);
  });
});
