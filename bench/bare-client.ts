/**
 * A bare poller, as the reference the service is measured against: no framework, no database. It reads every
 * meter once per pass with the same concurrency and the same transport rules as src/polling/meter-client.ts
 * (an undici Client, one keep-alive connection, per origin for the first `keptAlive` origins, the others through
 * an Agent on a connection closed after the answer; the same connect/headers/body deadlines), parses the JSON and
 * checks the id. Other transports, for bench:clients: 'undici-pool' (a Pool per origin, the Agent's default
 * Pool for one-shot reads: the service's transport before the Client change) and 'axios' (keep-alive
 * http.Agent).
 *
 * Run as a child of the benchmark, step by step so that the benchmark can interleave it with the service:
 * {type:'start', ...} -> {type:'started'}; {type:'run-pass', warmup} -> {type:'pass'}; {type:'finish'} ->
 * {type:'done'}. Ends itself when the parent goes away.
 */
import { writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { Session } from 'node:inspector';
import { performance } from 'node:perf_hooks';
import axios, { AxiosInstance } from 'axios';
import { Agent, Client, Dispatcher, Pool } from 'undici';
import { errorCode } from '../src/common/error-code';

export interface BareStart {
  type: 'start';
  client: 'undici-client' | 'undici-pool' | 'axios';
  ports: number[];
  concurrency: number;
  keptAlive: number;
  timeoutMs: number;
  keepAliveMs: number;
  /** Profiles the measured passes (V8 sampling profiler) into this file. */
  profileFile?: string;
}

export interface BareRunPass {
  type: 'run-pass';
  warmup: boolean;
}

export interface BarePass {
  type: 'pass';
  index: number;
  warmup: boolean;
  ok: number;
  failed: number;
  wallMs: number;
  cpuMs: number;
  /** Of cpuMs, in the kernel. */
  sysMs: number;
  eventLoopUtilization: number;
  firstErrors: string[];
}

export interface BareDone {
  type: 'done';
  passes: BarePass[];
  maxRssKb: number;
  keptAliveOrigins: number;
}

type Poll = (port: number) => Promise<string | null>;

function undiciPoller(start: BareStart): { poll: Poll; keptAlive: () => number } {
  const options: Pool.Options = {
    connect: { timeout: start.timeoutMs },
    headersTimeout: start.timeoutMs,
    bodyTimeout: start.timeoutMs,
    keepAliveTimeout: start.keepAliveMs,
    keepAliveMaxTimeout: start.keepAliveMs,
    maxHeaderSize: 16 * 1024,
  };
  const usePool = start.client === 'undici-pool';
  const pools = new Map<number, Dispatcher>();
  const oneShot = new Agent({ ...options, pipelining: 0, ...(usePool ? {} : { connections: 1 }) });
  const dispatcherFor = (port: number, origin: string): [Dispatcher, boolean] => {
    const pool = pools.get(port);
    if (pool) return [pool, false];
    if (pools.size >= start.keptAlive) return [oneShot, true];
    const created = usePool ? new Pool(origin, options) : new Client(origin, options);
    pools.set(port, created);
    return [created, false];
  };
  const poll: Poll = async (port) => {
    const origin = `http://127.0.0.1:${port}`;
    try {
      const [dispatcher, reset] = dispatcherFor(port, origin);
      const response = await dispatcher.request({
        origin,
        path: '/',
        method: 'GET',
        headers: { accept: 'application/json' },
        reset,
      });
      const text = await response.body.text();
      if (response.statusCode !== 200) return `HTTP ${response.statusCode}`;
      return checkPayload(text, port);
    } catch (error) {
      return errorCode(error) || (error instanceof Error ? error.message : String(error));
    }
  };
  return { poll, keptAlive: () => pools.size };
}

function axiosPoller(start: BareStart): { poll: Poll; keptAlive: () => number } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const client: AxiosInstance = axios.create({
    httpAgent: agent,
    timeout: start.timeoutMs,
    maxRedirects: 0,
    proxy: false,
    responseType: 'text',
    transformResponse: [(data: unknown) => data],
    validateStatus: () => true,
    headers: { accept: 'application/json' },
  });
  const poll: Poll = async (port) => {
    try {
      const response = await client.get<string>(`http://127.0.0.1:${port}/`);
      if (response.status !== 200) return `HTTP ${response.status}`;
      return checkPayload(response.data, port);
    } catch (error) {
      return errorCode(error) || (error instanceof Error ? error.message : String(error));
    }
  };
  const keptAlive = () => Object.values(agent.freeSockets).reduce((sum, list) => sum + (list?.length ?? 0), 0);
  return { poll, keptAlive };
}

/** null when the answer is a reading from the meter on `port`, else why not. */
function checkPayload(text: string, port: number): string | null {
  let parsed: { id?: unknown; A?: unknown; kW?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    return 'not JSON';
  }
  if (parsed.id !== String(port)) return 'wrong id';
  if (parsed.A === undefined || parsed.kW === undefined) return 'missing field';
  return null;
}


async function runPass(poll: Poll, ports: readonly number[], concurrency: number): Promise<Omit<BarePass, 'type' | 'index' | 'warmup'>> {
  let next = 0;
  let ok = 0;
  let failed = 0;
  const firstErrors: string[] = [];
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < ports.length) {
      const port = ports[next++];
      const problem = await poll(port);
      if (problem === null) {
        ok++;
      } else {
        failed++;
        if (firstErrors.length < 5) firstErrors.push(`${port}: ${problem}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ports.length) }, worker));
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return {
    ok,
    failed,
    wallMs,
    cpuMs: (used.user + used.system) / 1000,
    sysMs: used.system / 1000,
    eventLoopUtilization: performance.eventLoopUtilization(elu).utilization,
    firstErrors,
  };
}

function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) =>
    session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result as T))),
  );
}

class BareRunner {
  private readonly poll: Poll;
  private readonly keptAlive: () => number;
  private readonly passes: BarePass[] = [];
  private session: Session | undefined;

  constructor(private readonly start: BareStart) {
    ({ poll: this.poll, keptAlive: this.keptAlive } = start.client === 'axios' ? axiosPoller(start) : undiciPoller(start));
  }

  async pass(warmup: boolean): Promise<BarePass> {
    if (this.start.profileFile && !warmup && !this.session) {
      this.session = new Session();
      this.session.connect();
      await post(this.session, 'Profiler.enable');
      await post(this.session, 'Profiler.setSamplingInterval', { interval: 500 });
      await post(this.session, 'Profiler.start');
    }
    const result = await runPass(this.poll, this.start.ports, this.start.concurrency);
    const pass: BarePass = { type: 'pass', index: this.passes.length, warmup, ...result };
    this.passes.push(pass);
    return pass;
  }

  async finish(): Promise<BareDone> {
    if (this.session && this.start.profileFile) {
      const { profile } = await post<{ profile: object }>(this.session, 'Profiler.stop');
      writeFileSync(this.start.profileFile, JSON.stringify(profile));
      this.session.disconnect();
    }
    return { type: 'done', passes: this.passes, maxRssKb: process.resourceUsage().maxRSS, keptAliveOrigins: this.keptAlive() };
  }
}

if (require.main === module) {
  process.once('disconnect', () => process.exit(0));
  process.once('SIGTERM', () => process.exit(0));
  let runner: BareRunner | undefined;
  const handle = async (message: { type?: string }): Promise<object | undefined> => {
    if (message?.type === 'start') {
      runner = new BareRunner(message as BareStart);
      return { type: 'started' };
    }
    if (!runner) throw new Error(`"${String(message?.type)}" before "start"`);
    if (message.type === 'run-pass') return runner.pass((message as BareRunPass).warmup);
    if (message.type === 'finish') return runner.finish();
    return undefined;
  };
  process.on('message', (message: { type?: string }) => {
    handle(message).then(
      (reply) => reply && process.send?.(reply),
      (error: unknown) =>
        process.send?.({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
  process.send?.({ type: 'waiting' });
}
