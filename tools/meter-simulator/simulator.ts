/**
 * Meter simulator: plain Node `http`, no dependencies.
 *
 * Two layouts (SPEC 1):
 * - per-port: one meter per TCP port, read at `GET /`. All ports share ONE http.Server; each port only has a
 *   light net.Server that hands its connections over, so 10,000 meters fit in one process.
 * - emulator: one server on `emulatorPort`, meter <p> read at `GET /<p>`. With `publicEmulator` it answers
 *   exactly like the public emulator: any numeric path, id = that number, A = random integer 0..50, kW = "22".
 *
 * Besides the faults of real meters (hang, slow, refuse, ...) it has hostile ones, for testing what a poller
 * survives: a body dripped a byte a second, a 100 MB body, one that never ends, a connection closed mid-body, and
 * answers that look almost like a reading (HTML, empty, invalid UTF-8, deep nesting, an array, 400-digit numbers).
 * Big bodies are streamed with backpressure, never built in memory. Hostile bodies carry HOSTILE_MARKER outside
 * the fields a poller reads, so a test can tell whether any of it was stored or relayed.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** What real meters do wrong. */
export type MeterFault =
  | { kind: 'healthy' }
  | { kind: 'hang' }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'refuse' }
  /** `body` replaces the status text as the answer's body (text/plain). */
  | { kind: 'status'; status: number; body?: string }
  | { kind: 'garbage' }
  | { kind: 'wrong-id'; id: string }
  /** `status` 302 unless given (301, 303, 307, 308...). */
  | { kind: 'redirect'; location: string; status?: number }
  | { kind: 'bad-value'; field: 'A' | 'kW'; value: unknown }
  | { kind: 'replace'; startKwh?: number }
  | { kind: 'misread'; value?: number };

/** What a hostile (or badly broken) server on a meter's port does. */
export type HostileFault =
  | { kind: 'drip'; intervalMs?: number }
  | { kind: 'huge'; bytes?: number }
  | { kind: 'endless' }
  | { kind: 'cut' }
  | { kind: 'html' }
  | { kind: 'empty' }
  | { kind: 'invalid-utf8' }
  | { kind: 'deep-json'; depth?: number }
  | { kind: 'json-array' }
  | { kind: 'long-number'; digits?: number };

export type Fault = MeterFault | HostileFault;

/** Text inside every hostile body, where a poller never looks: finding it in a response means a body was relayed. */
export const HOSTILE_MARKER = 'hostile-meter-body-7f3a';
export const DEFAULT_DRIP_INTERVAL_MS = 1000;
export const DEFAULT_HUGE_BYTES = 100 * 1024 * 1024;
export const DEFAULT_DEEP_JSON_DEPTH = 30_000;
export const DEFAULT_LONG_NUMBER_DIGITS = 400;

export interface SimulatorOptions {
  host?: string;
  ports?: number[];
  emulatorPort?: number;
  publicEmulator?: boolean;
  idOf?: (port: number) => string;
  startKwh?: (port: number) => number;
  speedup?: number;
  keepAliveTimeoutMs?: number;
  bindRetries?: number;
}

export interface Simulator {
  readonly host: string;
  readonly ports: number[];
  readonly failedPorts: { port: number; error: string }[];
  urlOf(port: number): string;
  setFault(port: number, fault: Fault): void;
  counterOf(port: number): string;
  /** GET requests that reached the meter. */
  requestsOf(port: number): number;
  /** TCP connections accepted on the port, whether or not a request followed (emulator layout: its one port). */
  connectionsOf(port: number): number;
  /** Resolves once every listener re-opened or closed by setFault has finished binding or closing. */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 10 * 60 * 1000;
const DEFAULT_BIND_RETRIES = 3;
const BIND_RETRY_DELAY_MS = 50;
const LISTEN_PARALLELISM = 64;
const STREAM_CHUNK_BYTES = 64 * 1024;
const VOLTS = 230;
const MS_PER_HOUR = 3_600_000;
/** The load follows a daily cycle, so A varies over (simulated) time while the counter stays its exact integral. */
const LOAD_CYCLE_RADIANS_PER_HOUR = (2 * Math.PI) / 24;
const PUBLIC_EMULATOR_KWH = 22;
const HEALTHY: Fault = { kind: 'healthy' };

interface Meter {
  readonly port: number;
  readonly id: string;
  readonly baseAmps: number;
  readonly swingAmps: number;
  readonly phase: number;
  /** true counter = offsetKwh + energy drawn since the simulator started */
  offsetKwh: number;
  /** highest true counter already reported: rounding can never make a healthy answer go down */
  highWaterKwh: number;
  lastReportedKwh: number | undefined;
  fault: Fault;
  requests: number;
  listener: net.Server | undefined;
  listenerChange: Promise<void> | undefined;
}

type Payload = { id: string; A: unknown; kW: unknown };

export function openFileLimit(): { soft: number; hard: number } {
  let text: string;
  try {
    text = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return { soft: Infinity, hard: Infinity };
  }
  const line = text.split('\n').find((l) => l.startsWith('Max open files'));
  const fields = line?.slice('Max open files'.length).trim().split(/\s+/) ?? [];
  const parse = (field: string | undefined): number =>
    field === undefined || field === 'unlimited' ? Infinity : Number(field);
  return { soft: parse(fields[0]), hard: parse(fields[1]) };
}

function openFileCount(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

/** Deterministic value in [0, 1) from a port, so a given port is the same meter on every run. */
function unitHash(port: number, salt: number): number {
  let x = (Math.imul(port ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(salt + 1, 0xc2b2ae35)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return (x >>> 0) / 2 ** 32;
}

function roundTo3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function renderKwh(value: number): string {
  return String(roundTo3(value));
}

function defaultStartKwh(port: number): number {
  return roundTo3(1000 + unitHash(port, 1) * 99_000);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

function assertPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`${what} must be an integer 1..65535, got ${port}`);
  }
}

/** The faults that carry nothing but their kind (the CLI refuses a value for them). */
export const NO_ARGUMENT_FAULT_KINDS = [
  'healthy',
  'hang',
  'refuse',
  'garbage',
  'endless',
  'cut',
  'html',
  'empty',
  'invalid-utf8',
  'json-array',
] as const;

export function isNoArgumentKind(kind: string): kind is (typeof NO_ARGUMENT_FAULT_KINDS)[number] {
  return (NO_ARGUMENT_FAULT_KINDS as readonly string[]).includes(kind);
}

function validateFault(fault: Fault): void {
  switch (fault.kind) {
    case 'slow':
      if (!Number.isFinite(fault.delayMs) || fault.delayMs < 0) throw new RangeError('slow: delayMs must be >= 0');
      return;
    case 'status':
      // Node's own bounds for a status code; anything else makes writeHead throw at answer time.
      if (!Number.isInteger(fault.status) || fault.status < 100 || fault.status > 999) {
        throw new RangeError('status: status must be an integer 100..999');
      }
      if (fault.body !== undefined && typeof fault.body !== 'string') throw new TypeError('status: body must be a string');
      return;
    case 'wrong-id':
      if (typeof fault.id !== 'string') throw new TypeError('wrong-id: id must be a string');
      return;
    case 'redirect':
      if (typeof fault.location !== 'string' || fault.location === '') {
        throw new TypeError('redirect: location must be a non-empty string');
      }
      if (fault.status !== undefined && !(Number.isInteger(fault.status) && fault.status >= 300 && fault.status <= 399)) {
        throw new RangeError('redirect: status must be an integer 300..399');
      }
      return;
    case 'bad-value':
      if (fault.field !== 'A' && fault.field !== 'kW') throw new TypeError("bad-value: field must be 'A' or 'kW'");
      return;
    case 'replace':
      if (fault.startKwh !== undefined && !(Number.isFinite(fault.startKwh) && fault.startKwh >= 0)) {
        throw new RangeError('replace: startKwh must be a finite number >= 0');
      }
      return;
    case 'misread':
      if (fault.value !== undefined && !Number.isFinite(fault.value)) {
        throw new RangeError('misread: value must be finite');
      }
      return;
    case 'drip':
      if (fault.intervalMs !== undefined && !(Number.isFinite(fault.intervalMs) && fault.intervalMs >= 1)) {
        throw new RangeError('drip: intervalMs must be >= 1');
      }
      return;
    case 'huge':
      if (fault.bytes !== undefined && !(Number.isSafeInteger(fault.bytes) && fault.bytes >= 0)) {
        throw new RangeError('huge: bytes must be an integer >= 0');
      }
      return;
    case 'deep-json':
      if (fault.depth !== undefined && !(Number.isSafeInteger(fault.depth) && fault.depth >= 1)) {
        throw new RangeError('deep-json: depth must be an integer >= 1');
      }
      return;
    case 'long-number':
      if (fault.digits !== undefined && !(Number.isSafeInteger(fault.digits) && fault.digits >= 1)) {
        throw new RangeError('long-number: digits must be an integer >= 1');
      }
      return;
    default:
      if (isNoArgumentKind(fault.kind)) return;
      throw new TypeError(`unknown fault kind ${(fault as { kind: unknown }).kind}`);
  }
}

function listenOnce(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port, host, exclusive: true });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  const host = options.host ?? DEFAULT_HOST;
  const knownPorts = [...new Set(options.ports ?? [])];
  const emulatorPort = options.emulatorPort;
  const publicEmulator = options.publicEmulator ?? false;
  const emulatorLayout = emulatorPort !== undefined;
  const speedup = options.speedup ?? 1;
  const keepAliveTimeoutMs = options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
  const bindRetries = options.bindRetries ?? DEFAULT_BIND_RETRIES;
  const idOf = options.idOf ?? ((port: number) => String(port));
  const startKwhOf = options.startKwh ?? defaultStartKwh;

  for (const port of knownPorts) assertPort(port, 'meter port');
  if (emulatorLayout) assertPort(emulatorPort, 'emulatorPort');
  if (publicEmulator && !emulatorLayout) throw new TypeError('publicEmulator needs emulatorPort');
  if (!emulatorLayout && knownPorts.length === 0) throw new TypeError('no meter ports given');
  if (!(Number.isFinite(speedup) && speedup > 0)) throw new RangeError('speedup must be a positive number');
  if (!(Number.isInteger(bindRetries) && bindRetries >= 0)) throw new RangeError('bindRetries must be an integer >= 0');
  if (!(Number.isFinite(keepAliveTimeoutMs) && keepAliveTimeoutMs > 0)) {
    throw new RangeError('keepAliveTimeoutMs must be a positive number');
  }

  const startedAt = performance.now();
  const meters = new Map<number, Meter>();
  const socketPorts = new Map<net.Socket, number>();
  /** Timers of answers still to come (slow, drip): cleared when the client goes away and at stop. */
  const answerTimers = new Set<NodeJS.Timeout>();
  const connectionCounts = new Map<number, number>();
  const listenerChanges = new Set<Promise<void>>();
  const failedPorts: { port: number; error: string }[] = [];
  let stopped = false;
  let stopping: Promise<void> | undefined;

  const simulatedHours = (): number => ((performance.now() - startedAt) * speedup) / MS_PER_HOUR;

  /** Energy (kWh) drawn since start: the integral of VOLTS * A(t) with A(t) = base + swing * sin(wt + phase). */
  const energySinceStart = (meter: Meter, hours: number): number => {
    const w = LOAD_CYCLE_RADIANS_PER_HOUR;
    const ampHours =
      meter.baseAmps * hours + (meter.swingAmps / w) * (Math.cos(meter.phase) - Math.cos(w * hours + meter.phase));
    return (ampHours * VOLTS) / 1000;
  };

  const ampsAt = (meter: Meter, hours: number): number =>
    meter.baseAmps + meter.swingAmps * Math.sin(LOAD_CYCLE_RADIANS_PER_HOUR * hours + meter.phase);

  const trueKwh = (meter: Meter): number => {
    if (publicEmulator) return PUBLIC_EMULATOR_KWH;
    return Math.max(meter.offsetKwh + energySinceStart(meter, simulatedHours()), meter.highWaterKwh);
  };

  const createMeter = (port: number): Meter => {
    const baseAmps = 2 + unitHash(port, 2) * 18;
    const startKwh = publicEmulator ? PUBLIC_EMULATOR_KWH : startKwhOf(port);
    if (!(Number.isFinite(startKwh) && startKwh >= 0)) throw new RangeError(`startKwh(${port}) must be >= 0`);
    return {
      port,
      id: publicEmulator ? String(port) : idOf(port),
      baseAmps,
      // swing below base keeps A > 0, so the counter strictly grows
      swingAmps: baseAmps * 0.9 * unitHash(port, 3),
      phase: 2 * Math.PI * unitHash(port, 4),
      offsetKwh: startKwh,
      highWaterKwh: startKwh,
      lastReportedKwh: undefined,
      fault: HEALTHY,
      requests: 0,
      listener: undefined,
      listenerChange: undefined,
    };
  };

  /** A reading as a healthy meter would send it now; records what was reported. */
  const takeReading = (meter: Meter): Payload => {
    if (publicEmulator) {
      meter.lastReportedKwh = PUBLIC_EMULATOR_KWH;
      return { id: meter.id, A: String(Math.floor(Math.random() * 51)), kW: String(PUBLIC_EMULATOR_KWH) };
    }
    const hours = simulatedHours();
    const kwh = Math.max(meter.offsetKwh + energySinceStart(meter, hours), meter.highWaterKwh);
    meter.highWaterKwh = kwh;
    meter.lastReportedKwh = roundTo3(kwh);
    // an instantaneous sample is noisier than the average the counter integrates
    const amps = Math.max(0, ampsAt(meter, hours) + (Math.random() - 0.5) * 0.6);
    return { id: meter.id, A: String(Math.round(amps * 10) / 10), kW: renderKwh(kwh) };
  };

  const sendJson = (res: http.ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    const headers: http.OutgoingHttpHeaders = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    };
    if (publicEmulator) headers.server = 'uvicorn';
    res.writeHead(status, headers);
    res.end(text);
  };

  const answer = (meter: Meter, req: http.IncomingMessage, res: http.ServerResponse): void => {
    const fault = meter.fault;
    switch (fault.kind) {
      case 'healthy':
      case 'replace': // applied when set, never stored
        sendJson(res, 200, takeReading(meter));
        return;
      case 'hang':
        return; // stop() or the client ends it
      case 'slow': {
        const timer = setTimeout(() => {
          answerTimers.delete(timer);
          if (!res.destroyed) sendJson(res, 200, takeReading(meter));
        }, fault.delayMs);
        answerTimers.add(timer);
        res.once('close', () => {
          clearTimeout(timer);
          answerTimers.delete(timer);
        });
        return;
      }
      case 'refuse':
        req.socket.destroy();
        return;
      case 'status': {
        const text = fault.body ?? http.STATUS_CODES[fault.status] ?? 'Error';
        res.writeHead(fault.status, {
          'content-type': 'text/plain; charset=utf-8',
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
        return;
      }
      case 'garbage': {
        // a body cut short mid-object, still labelled as JSON: what a meter rebooting mid-write sends
        const text = `{"id":"${meter.id}","A":"1`;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      case 'wrong-id':
        sendJson(res, 200, { ...takeReading(meter), id: fault.id });
        return;
      case 'redirect':
        res.writeHead(fault.status ?? 302, { location: fault.location, 'content-length': 0 });
        res.end();
        return;
      case 'bad-value':
        sendJson(res, 200, { ...takeReading(meter), [fault.field]: fault.value });
        return;
      case 'misread': {
        const previous = meter.lastReportedKwh ?? trueKwh(meter);
        const reported = fault.value ?? previous / 2;
        meter.fault = HEALTHY;
        const reading = takeReading(meter);
        meter.lastReportedKwh = roundTo3(reported);
        sendJson(res, 200, { ...reading, kW: renderKwh(reported) });
        return;
      }
      default:
        answerHostile(meter, fault, res);
    }
  };

  /** A reading that would be accepted, with the marker in a field no poller reads. */
  const markedReading = (meter: Meter): string => JSON.stringify({ ...takeReading(meter), note: HOSTILE_MARKER });

  const sendRaw = (res: http.ServerResponse, contentType: string, body: Buffer | string): void => {
    res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  /** Streams `prefix` then spaces up to `total` bytes (forever when undefined), as fast as the client reads. */
  const streamPadded = (res: http.ServerResponse, prefix: string, total: number | undefined): void => {
    const head = Buffer.from(prefix);
    const first = total === undefined ? head : head.subarray(0, Math.min(head.length, total));
    const padding = Buffer.alloc(STREAM_CHUNK_BYTES, 0x20);
    let remaining = total === undefined ? Infinity : total - first.length;
    res.writeHead(200, { 'content-type': 'application/json', ...(total === undefined ? {} : { 'content-length': total }) });
    res.write(first);
    const pump = (): void => {
      while (!res.destroyed) {
        if (remaining <= 0) {
          res.end();
          return;
        }
        const size = Math.min(padding.length, remaining);
        remaining -= size;
        if (!res.write(size === padding.length ? padding : padding.subarray(0, size))) {
          res.once('drain', pump);
          return;
        }
      }
    };
    pump();
  };

  const answerHostile = (meter: Meter, fault: HostileFault, res: http.ServerResponse): void => {
    switch (fault.kind) {
      case 'drip': {
        // A valid reading, one byte per interval: only a deadline over the whole answer ends it in time.
        const body = Buffer.from(markedReading(meter));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
        res.flushHeaders();
        let sent = 0;
        const drip = (): void => {
          answerTimers.delete(timer);
          if (res.destroyed) return;
          res.write(body.subarray(sent, sent + 1));
          sent += 1;
          if (sent >= body.length) {
            res.end();
            return;
          }
          timer = setTimeout(drip, fault.intervalMs ?? DEFAULT_DRIP_INTERVAL_MS);
          answerTimers.add(timer);
        };
        let timer = setTimeout(drip, fault.intervalMs ?? DEFAULT_DRIP_INTERVAL_MS);
        answerTimers.add(timer);
        res.once('close', () => {
          clearTimeout(timer);
          answerTimers.delete(timer);
        });
        return;
      }
      case 'huge':
        // A valid reading followed by whitespace: valid JSON that only a size cap refuses.
        streamPadded(res, markedReading(meter), fault.bytes ?? DEFAULT_HUGE_BYTES);
        return;
      case 'endless':
        streamPadded(res, markedReading(meter), undefined);
        return;
      case 'cut': {
        const body = Buffer.from(markedReading(meter));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
        res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
        return;
      }
      case 'html':
        sendRaw(
          res,
          'text/html; charset=utf-8',
          `<!DOCTYPE html><html><head><title>Router login</title></head><body><h1>${HOSTILE_MARKER}</h1>` +
            `<form action="/login"><input name="password"></form><p>${meter.id}</p></body></html>`,
        );
        return;
      case 'empty':
        sendRaw(res, 'application/json', '');
        return;
      case 'invalid-utf8': {
        // Would be a valid reading if decoded leniently (the bad bytes sit in a field no poller reads).
        const reading = markedReading(meter);
        sendRaw(
          res,
          'application/json',
          Buffer.concat([Buffer.from(reading.slice(0, -2)), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('"}')]),
        );
        return;
      }
      case 'deep-json': {
        const depth = fault.depth ?? DEFAULT_DEEP_JSON_DEPTH;
        const { id, A } = takeReading(meter);
        sendRaw(
          res,
          'application/json',
          `{"id":${JSON.stringify(id)},"A":${JSON.stringify(A)},"note":"${HOSTILE_MARKER}","kW":` +
            `${'['.repeat(depth)}${']'.repeat(depth)}}`,
        );
        return;
      }
      case 'json-array':
        sendRaw(res, 'application/json', `[${markedReading(meter)}]`);
        return;
      case 'long-number': {
        const { id, A } = takeReading(meter);
        const digits = fault.digits ?? DEFAULT_LONG_NUMBER_DIGITS;
        sendRaw(
          res,
          'application/json',
          `{"id":${JSON.stringify(id)},"A":${JSON.stringify(A)},"note":"${HOSTILE_MARKER}","kW":${'9'.repeat(digits)}}`,
        );
        return;
      }
    }
  };

  const notFound = (res: http.ServerResponse): void => sendJson(res, 404, { detail: 'Not Found' });

  /** The meter a request is for, or undefined after answering it (404, 405, redirect) directly. */
  const route = (req: http.IncomingMessage, res: http.ServerResponse): Meter | undefined => {
    const path = (req.url ?? '/').split('?', 1)[0];
    let meter: Meter | undefined;
    if (!emulatorLayout) {
      const port = socketPorts.get(req.socket);
      meter = port === undefined ? undefined : meters.get(port);
      if (path !== '/') meter = undefined;
    } else {
      const match = /^\/(\d{1,15})(\/?)$/.exec(path);
      if (match) {
        const port = Number(match[1]);
        if (match[2] === '/' && publicEmulator) {
          // Starlette's default: redirect a trailing slash to the declared route
          const location = req.headers.host ? `http://${req.headers.host}/${port}` : `/${port}`;
          res.writeHead(307, { location, 'content-length': 0 });
          res.end();
          return undefined;
        }
        meter = meters.get(port);
        if (meter === undefined && publicEmulator) {
          meter = createMeter(port);
          meters.set(port, meter);
        }
      }
    }
    if (meter === undefined) {
      notFound(res);
      return undefined;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET');
      sendJson(res, 405, { detail: 'Method Not Allowed' });
      return undefined;
    }
    return meter;
  };

  const httpServer = http.createServer((req, res) => {
    const meter = route(req, res);
    if (meter === undefined) return;
    if (req.method === 'GET') meter.requests += 1;
    answer(meter, req, res);
  });
  httpServer.keepAliveTimeout = keepAliveTimeoutMs;

  const track = (socket: net.Socket, port: number): void => {
    connectionCounts.set(port, (connectionCounts.get(port) ?? 0) + 1);
    socketPorts.set(socket, port);
    socket.once('close', () => socketPorts.delete(socket));
  };

  const bindWithRetries = async (server: net.Server, port: number): Promise<void> => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await listenOnce(server, port, host);
        return;
      } catch (err) {
        // the kernel's ephemeral range overlaps the meter range: an outgoing connection may hold the port briefly
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= bindRetries) throw err;
        await delay(BIND_RETRY_DELAY_MS * (attempt + 1));
      }
    }
  };

  const openListener = async (port: number): Promise<net.Server> => {
    const server = net.createServer((socket) => {
      track(socket, port);
      httpServer.emit('connection', socket);
    });
    await bindWithRetries(server, port);
    return server;
  };

  const closeListener = (meter: Meter): void => {
    const listener = meter.listener;
    meter.listener = undefined;
    listener?.close();
    for (const [socket, port] of socketPorts) if (port === meter.port) socket.destroy();
  };

  /** Brings a per-port meter's listener in line with its fault: closed for 'refuse' (and after stop), open otherwise. */
  const syncListener = async (meter: Meter): Promise<void> => {
    const wantOpen = !stopped && meter.fault.kind !== 'refuse';
    if (!wantOpen) {
      closeListener(meter);
      return;
    }
    if (meter.listener !== undefined) return;
    try {
      const listener = await openListener(meter.port);
      meter.listener = listener;
      if (stopped || meter.fault.kind === 'refuse') closeListener(meter);
    } catch (err) {
      failedPorts.push({ port: meter.port, error: errorText(err) });
    }
  };

  const scheduleListenerSync = (meter: Meter): void => {
    if (meter.listenerChange === undefined && meter.fault.kind === 'refuse') {
      closeListener(meter); // synchronously, so the very next connect is refused
      return;
    }
    const change = (meter.listenerChange ?? Promise.resolve()).then(() => syncListener(meter));
    meter.listenerChange = change;
    listenerChanges.add(change);
    void change.finally(() => {
      listenerChanges.delete(change);
      if (meter.listenerChange === change) meter.listenerChange = undefined;
    });
  };

  const knownMeter = (port: number): Meter => {
    const meter = meters.get(port);
    if (meter !== undefined) return meter;
    if (publicEmulator) {
      assertPort(port, 'meter port');
      const created = createMeter(port);
      meters.set(port, created);
      return created;
    }
    throw new RangeError(`no meter is served on port ${port}`);
  };

  let servedPorts: number[];
  if (emulatorLayout) {
    for (const port of knownPorts) meters.set(port, createMeter(port));
    httpServer.on('connection', (socket: net.Socket) => {
      if (!socketPorts.has(socket)) track(socket, emulatorPort);
    });
    for (let attempt = 0; ; attempt += 1) {
      try {
        await listenOnce(httpServer, emulatorPort, host);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= bindRetries) {
          throw new Error(`cannot listen on ${host}:${emulatorPort}: ${errorText(err)}`);
        }
        await delay(BIND_RETRY_DELAY_MS * (attempt + 1));
      }
    }
    servedPorts = knownPorts;
  } else {
    const limit = openFileLimit();
    // a listener and a kept-alive connection per meter, on top of what the process already holds
    const needed = knownPorts.length * 2 + openFileCount();
    if (needed > limit.soft) {
      console.warn(
        `meter-simulator: ${knownPorts.length} meters need up to ${needed} open files ` +
          `(a listener and a connection each); the open-file limit is ${limit.soft} (hard ${limit.hard}). ` +
          'Connections beyond it are dropped: split the ports across several simulator processes.',
      );
    }
    const candidates = knownPorts.map(createMeter);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < candidates.length) {
        const meter = candidates[next++];
        try {
          meter.listener = await openListener(meter.port);
          meters.set(meter.port, meter);
        } catch (err) {
          failedPorts.push({ port: meter.port, error: errorText(err) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(LISTEN_PARALLELISM, candidates.length) }, worker));
    servedPorts = knownPorts.filter((port) => meters.has(port));
  }

  const urlHost = host.includes(':') ? `[${host}]` : host;

  const settle = async (): Promise<void> => {
    while (listenerChanges.size > 0) await Promise.allSettled([...listenerChanges]);
  };

  /** Closes every listener and destroys every socket, hung ones included. */
  const stopAll = async (): Promise<void> => {
    stopped = true;
    await settle();
    for (const timer of answerTimers) clearTimeout(timer);
    answerTimers.clear();
    const closing: Promise<void>[] = [];
    if (emulatorLayout) {
      closing.push(closeServer(httpServer));
    } else {
      for (const meter of meters.values()) {
        if (meter.listener !== undefined) closing.push(closeServer(meter.listener));
        meter.listener = undefined;
      }
    }
    for (const socket of socketPorts.keys()) socket.destroy();
    await Promise.all(closing);
  };

  return {
    host,
    ports: servedPorts,
    failedPorts,
    urlOf: (port) => (emulatorLayout ? `http://${urlHost}:${emulatorPort}/${port}` : `http://${urlHost}:${port}/`),
    setFault(port, fault) {
      validateFault(fault);
      const meter = knownMeter(port);
      if (fault.kind === 'replace') {
        if (!publicEmulator) {
          const startKwh = fault.startKwh ?? roundTo3(Math.random() * 5);
          meter.offsetKwh = startKwh - energySinceStart(meter, simulatedHours());
          meter.highWaterKwh = startKwh;
          meter.lastReportedKwh = undefined;
        }
        meter.fault = HEALTHY;
      } else {
        meter.fault = fault;
      }
      if (!emulatorLayout && !stopped) scheduleListenerSync(meter);
    },
    counterOf: (port) => renderKwh(trueKwh(knownMeter(port))),
    requestsOf: (port) => meters.get(port)?.requests ?? 0,
    connectionsOf: (port) => connectionCounts.get(port) ?? 0,
    settle,
    stop() {
      stopping ??= stopAll();
      return stopping;
    },
  };
}
