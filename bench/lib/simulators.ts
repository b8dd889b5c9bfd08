/**
 * Meters on real ports: several processes of tools/meter-simulator (each holds a listening socket per meter and
 * a connection per kept-alive client, so one process serves at most ~9,000 under a 20,000 open-file limit).
 */
import { Child, ChildRegistry, nextMessage } from './children';

const SIMULATOR = 'tools/meter-simulator/main.ts';
const READY_TIMEOUT_MS = 180_000;

export interface FailedPort {
  port: number;
  error: string;
}

export interface Fleet {
  /** Every port a meter answers on (requested ports that bound, then spare ports standing in for the others). */
  ports: number[];
  failed: FailedPort[];
  /** Spare ports used in place of failed ones. */
  spares: number[];
  processes: Child[];
  startMs: number;
}

interface ReadyMessage {
  type: 'ready';
  meters: number;
  failedPorts: FailedPort[];
}

/** Contiguous runs as the simulator's --ports syntax: 9000-9999,10001 */
export function portList(ports: readonly number[]): string {
  const sorted = [...ports].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

function split<T>(items: readonly T[], parts: number): T[][] {
  const out: T[][] = [];
  const size = Math.ceil(items.length / parts);
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function startOne(children: ChildRegistry, name: string, ports: readonly number[]): Promise<{ child: Child; ready: ReadyMessage }> {
  const child = children.fork(name, SIMULATOR, ['--ports', portList(ports), '--bind-retries', '5']);
  const ready = await nextMessage<ReadyMessage>(child, 'ready', READY_TIMEOUT_MS);
  return { child, ready };
}

/**
 * Starts the meters on `ports`, at most `perProcess` per simulator. Ports that cannot be bound (taken by another
 * program, or by an outgoing connection in a shared network namespace) are reported and replaced, one for one,
 * by free ports from `sparePorts`, so that the network still has as many meters as asked.
 */
export async function startFleet(
  children: ChildRegistry,
  label: string,
  ports: readonly number[],
  perProcess: number,
  sparePorts: readonly number[],
): Promise<Fleet> {
  const started = performance.now();
  const groups = split(ports, Math.ceil(ports.length / perProcess));
  const results = await Promise.all(groups.map((group, i) => startOne(children, `${label}-sim${i + 1}`, group)));
  const processes = results.map((r) => r.child);
  const failed = results.flatMap((r) => r.ready.failedPorts);
  const failedSet = new Set(failed.map((f) => f.port));
  const served = ports.filter((p) => !failedSet.has(p));
  const spares: number[] = [];
  if (failed.length > 0 && sparePorts.length > 0) {
    const wanted = sparePorts.slice(0, Math.min(sparePorts.length, failed.length + 20));
    const extra = await startOne(children, `${label}-sim-spare`, wanted);
    processes.push(extra.child);
    const extraFailed = new Set(extra.ready.failedPorts.map((f) => f.port));
    spares.push(...wanted.filter((p) => !extraFailed.has(p)).slice(0, failed.length));
  }
  return { ports: [...served, ...spares], failed, spares, processes, startMs: performance.now() - started };
}
