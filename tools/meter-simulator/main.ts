/**
 * CLI for the meter simulator.
 *
 *   node -r ts-node/register/transpile-only tools/meter-simulator/main.ts --ports 9000-9149 --fault 9005=hang
 *
 * Prints one JSON line on stdout when ready. Started with an IPC channel (child_process.fork), it also takes
 * {type:'setFault', port, fault}, {type:'counterOf', port}, {type:'requestsOf', port}, {type:'connectionsOf', port}
 * and {type:'memoryUsage'} messages (the last answers this process's process.memoryUsage()).
 */
import { parseArgs as parseNodeArgs } from 'node:util';
import { Fault, isNoArgumentKind, Simulator, SimulatorOptions, startSimulator } from './simulator';

export const USAGE = `usage: main.ts [options]
  --ports LIST             meter ports: ranges and comma lists, e.g. 9000-9149,9200 (repeatable)
  --host ADDRESS           address to listen on (default 127.0.0.1)
  --emulator PORT          emulator layout: one server on PORT, meter <p> read at /<p>
  --public-emulator PORT   exactly the public emulator on PORT (any numeric path answers)
  --speedup N              simulated time runs N times faster (counter growth)
  --keep-alive-ms MS       idle keep-alive timeout (default 600000)
  --bind-retries N         EADDRINUSE retries per port (default 3)
  --fault PORTS=FAULT      repeatable; FAULT is one of
                             healthy | hang | refuse | garbage | slow:MS | status:CODE | wrong-id:ID
                             redirect:URL | bad-value:A|kW[:VALUE] | replace[:KWH] | misread[:KWH]
                           hostile ones:
                             drip[:MS]          headers, then the body one byte every MS (default 1000)
                             huge[:BYTES]       a reading padded to BYTES (default 100 MiB), streamed
                             endless            a reading followed by a body that never ends
                             cut                headers and half the body, then the connection is closed
                             html | empty | invalid-utf8 | json-array
                             deep-json[:DEPTH]  kW nested DEPTH arrays deep (default 30000)
                             long-number[:N]    kW a JSON number of N digits (default 400)
                           bad-value VALUE is parsed as JSON when it is JSON (12, null, "12"), else kept as a
                           string (NaN, -1x); without VALUE the field is left out.`;

export class UsageError extends Error {}

export interface CliConfig {
  options: SimulatorOptions;
  faults: { port: number; fault: Fault }[];
}

function parseInteger(text: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${what}: expected an integer, got "${text}"`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`${what}: ${value} is outside ${min}..${max}`);
  return value;
}

function parseNumber(text: string, what: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new UsageError(`${what}: expected a number, got "${text}"`);
  return value;
}

/** "9000-9002,9005" -> [9000, 9001, 9002, 9005], in order, without duplicates. */
export function parsePortList(text: string): number[] {
  const ports = new Set<number>();
  for (const part of text.split(',').map((p) => p.trim())) {
    if (part === '') continue;
    const range = /^(\d+)-(\d+)$/.exec(part);
    if (range) {
      const from = parseInteger(range[1], 'port', 1, 65535);
      const to = parseInteger(range[2], 'port', 1, 65535);
      if (from > to) throw new UsageError(`port range ${part} runs backwards`);
      for (let port = from; port <= to; port += 1) ports.add(port);
    } else {
      ports.add(parseInteger(part, 'port', 1, 65535));
    }
  }
  if (ports.size === 0) throw new UsageError(`no ports in "${text}"`);
  return [...ports];
}

export function parseFault(text: string): Fault {
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const arg = colon < 0 ? undefined : text.slice(colon + 1);
  const required = (): string => {
    if (arg === undefined || arg === '') throw new UsageError(`fault ${kind} needs a value: ${kind}:VALUE`);
    return arg;
  };
  const noArgument = (fault: Fault): Fault => {
    if (arg !== undefined) throw new UsageError(`fault ${kind} takes no value`);
    return fault;
  };
  if (isNoArgumentKind(kind)) return noArgument({ kind });
  switch (kind) {
    case 'drip':
      return arg === undefined ? { kind } : { kind, intervalMs: parseInteger(required(), 'drip', 1, 2 ** 31 - 1) };
    case 'huge':
      return arg === undefined ? { kind } : { kind, bytes: parseInteger(required(), 'huge', 0, Number.MAX_SAFE_INTEGER) };
    case 'deep-json':
      return arg === undefined ? { kind } : { kind, depth: parseInteger(required(), 'deep-json', 1, 10_000_000) };
    case 'long-number':
      return arg === undefined ? { kind } : { kind, digits: parseInteger(required(), 'long-number', 1, 10_000_000) };
    case 'slow':
      return { kind, delayMs: parseInteger(required(), 'slow', 0, 2 ** 31 - 1) };
    case 'status':
      return { kind, status: parseInteger(required(), 'status', 100, 999) };
    case 'wrong-id':
      return { kind, id: required() };
    case 'redirect':
      return { kind, location: required() };
    case 'bad-value': {
      const spec = required();
      const sep = spec.indexOf(':');
      const field = sep < 0 ? spec : spec.slice(0, sep);
      if (field !== 'A' && field !== 'kW') throw new UsageError(`bad-value: field must be A or kW, got "${field}"`);
      if (sep < 0) return { kind, field, value: undefined };
      const raw = spec.slice(sep + 1);
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch {
        value = raw;
      }
      return { kind, field, value };
    }
    case 'replace':
      return arg === undefined ? { kind } : { kind, startKwh: parseNumber(arg, 'replace') };
    case 'misread':
      return arg === undefined ? { kind } : { kind, value: parseNumber(arg, 'misread') };
    default:
      throw new UsageError(`unknown fault "${kind}"`);
  }
}

export function parseCli(argv: string[]): CliConfig | 'help' {
  let values;
  try {
    ({ values } = parseNodeArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        ports: { type: 'string', multiple: true },
        host: { type: 'string' },
        emulator: { type: 'string' },
        'public-emulator': { type: 'string' },
        speedup: { type: 'string' },
        'keep-alive-ms': { type: 'string' },
        'bind-retries': { type: 'string' },
        fault: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';

  const options: SimulatorOptions = {};
  if (values.ports) options.ports = [...new Set(values.ports.flatMap(parsePortList))];
  if (values.host !== undefined) options.host = values.host;
  if (values.emulator !== undefined && values['public-emulator'] !== undefined) {
    throw new UsageError('give either --emulator or --public-emulator, not both');
  }
  if (values.emulator !== undefined) options.emulatorPort = parseInteger(values.emulator, '--emulator', 1, 65535);
  if (values['public-emulator'] !== undefined) {
    options.emulatorPort = parseInteger(values['public-emulator'], '--public-emulator', 1, 65535);
    options.publicEmulator = true;
  }
  if (options.emulatorPort === undefined && options.ports === undefined) {
    throw new UsageError('give --ports, --emulator with --ports, or --public-emulator');
  }
  if (values.emulator !== undefined && options.ports === undefined) {
    throw new UsageError('--emulator serves the meters given by --ports');
  }
  if (values.speedup !== undefined) {
    options.speedup = parseNumber(values.speedup, '--speedup');
    if (options.speedup <= 0) throw new UsageError('--speedup must be > 0');
  }
  if (values['keep-alive-ms'] !== undefined) {
    options.keepAliveTimeoutMs = parseInteger(values['keep-alive-ms'], '--keep-alive-ms', 1, 2 ** 31 - 1);
  }
  if (values['bind-retries'] !== undefined) {
    options.bindRetries = parseInteger(values['bind-retries'], '--bind-retries', 0, 100);
  }

  const faults: CliConfig['faults'] = [];
  for (const spec of values.fault ?? []) {
    const eq = spec.indexOf('=');
    if (eq < 0) throw new UsageError(`--fault ${spec}: expected PORTS=FAULT`);
    const fault = parseFault(spec.slice(eq + 1));
    for (const port of parsePortList(spec.slice(0, eq))) faults.push({ port, fault });
  }
  return { options, faults };
}

interface ControlMessage {
  type?: unknown;
  port?: unknown;
  fault?: unknown;
  ref?: unknown;
}

function handleControlMessage(simulator: Simulator, message: ControlMessage): Promise<unknown> | unknown {
  const port = message.port as number;
  switch (message.type) {
    case 'setFault':
      simulator.setFault(port, message.fault as Fault);
      return simulator.settle();
    case 'counterOf':
      return simulator.counterOf(port);
    case 'requestsOf':
      return simulator.requestsOf(port);
    case 'connectionsOf':
      return simulator.connectionsOf(port);
    case 'memoryUsage':
      return process.memoryUsage();
    default:
      throw new Error(`unknown message type ${String(message.type)}`);
  }
}

async function main(argv: string[]): Promise<void> {
  let config: CliConfig | 'help';
  try {
    config = parseCli(argv);
  } catch (err) {
    process.stderr.write(`meter-simulator: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (config === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }

  let simulator: Simulator;
  try {
    simulator = await startSimulator(config.options);
  } catch (err) {
    process.stderr.write(`meter-simulator: ${(err as Error).message}\n`);
    process.exit(1);
  }

  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    simulator.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`meter-simulator: stop failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);

  const served = new Set(simulator.ports);
  for (const { port, fault } of config.faults) {
    if (!served.has(port) && !config.options.publicEmulator) {
      process.stderr.write(`meter-simulator: --fault ${port}: no meter is served on that port, ignored\n`);
      continue;
    }
    simulator.setFault(port, fault);
  }
  await simulator.settle();

  if (simulator.failedPorts.length > 0) {
    const first = simulator.failedPorts[0];
    process.stderr.write(
      `meter-simulator: ${simulator.failedPorts.length} port(s) could not be bound ` +
        `(first: ${first.port} ${first.error})\n`,
    );
  }
  const layout = config.options.emulatorPort === undefined ? 'per-port' : 'emulator';
  const ready = {
    ready: true,
    meters: simulator.ports.length,
    failedPorts: simulator.failedPorts,
    host: simulator.host,
    layout,
    ...(config.options.emulatorPort === undefined ? {} : { emulatorPort: config.options.emulatorPort }),
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);

  const send = process.send?.bind(process);
  if (send) {
    process.on('message', (message: ControlMessage) => {
      const ref = message?.ref;
      Promise.resolve()
        .then(() => handleControlMessage(simulator, message ?? {}))
        .then(
          (value) => send({ type: 'ok', ...(value === undefined ? {} : { value }), ...(ref === undefined ? {} : { ref }) }),
          (err: unknown) =>
            send({ type: 'error', message: (err as Error)?.message ?? String(err), ...(ref === undefined ? {} : { ref }) }),
        );
    });
    // the parent went away: do not linger holding thousands of ports
    process.once('disconnect', shutdown);
    send({ type: 'ready', ...ready });
  }
}

if (require.main === module) void main(process.argv.slice(2));
