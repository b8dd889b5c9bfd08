/**
 * npm run bench:clients [-- --meters 5000 --passes 5 --rounds 2 --netns auto|off]
 *
 * The same simulated meters read by HTTP clients alone (no framework, no database), each in a process of its
 * own so that its CPU time and memory are its own: undici with a Client per origin (the service's transport),
 * undici with a Pool per origin (the service's transport before), and axios with a keep-alive http.Agent (the
 * client before undici). Every meter's connection is kept alive. Rounds alternate the clients, so that a change
 * in the machine's load falls on all of them. Prints a table and exits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { BareDone, BareStart } from './bare-client';
import { ChildRegistry, nextMessage, send } from './lib/children';
import { compileForChildren } from './lib/compile';
import { fixed, int, mb, median, seconds, sum, table } from './lib/format';
import { currentIsolation, exitWithLauncher, isInner, relaunch } from './lib/isolation';
import { coreCount, kernel, loadAverage, totalCpuMs } from './lib/machine';
import { startFleet } from './lib/simulators';

type ClientName = BareStart['client'];
const CLIENTS: { name: ClientName; label: string }[] = [
  { name: 'undici-client', label: 'undici Client per origin (service now)' },
  { name: 'undici-pool', label: 'undici Pool per origin' },
  { name: 'axios', label: 'axios, keep-alive http.Agent' },
];

const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

interface Run {
  client: ClientName;
  done: BareDone;
  simCpuMs: number;
}

async function inner(meters: number, passes: number, rounds: number): Promise<number> {
  const started = performance.now();
  const loadBefore = loadAverage();
  const iso = currentIsolation();
  const workDir = mkdtempSync(join(tmpdir(), 'em-bench-clients-'));
  const children = new ChildRegistry(workDir);
  process.on('exit', () => children.killAllNow());
  const abort = (why: string) => {
    out(`\n${why}: stopping every child process`);
    void children.stopAll(2000).finally(() => process.exit(1));
  };
  process.once('SIGINT', () => abort('SIGINT'));
  process.once('SIGTERM', () => abort('SIGTERM'));
  exitWithLauncher(() => abort('launcher gone'));
  setTimeout(() => abort('time limit (10 min) reached'), 10 * 60_000).unref();

  out('HTTP clients benchmark (npm run bench:clients)');
  out(`machine: ${coreCount()} cores, Linux ${kernel()}, Node ${process.version}, load average ${loadBefore}`);
  out(`open files: soft ${iso.limit.soft}, hard ${iso.limit.hard}; network: ${iso.netns} namespace`);
  out(
    `${int(meters)} meters on ports 9000-${9000 + meters - 1}, every connection kept alive, 256 requests in flight; ` +
      `per run 1 warm-up + ${passes} measured passes over all meters; ${rounds} rounds alternating the clients`,
  );
  const runs: Run[] = [];
  let failure: unknown;
  try {
    children.useCompiled(compileForChildren(join(workDir, 'js')));
    const ports = Array.from({ length: meters }, (_, i) => 9000 + i);
    const fleet = await startFleet(children, 'clients', ports, 8000, []);
    if (fleet.failed.length > 0) throw new Error(`${fleet.failed.length} meter ports could not be bound (first ${fleet.failed[0].port})`);
    const simPids = fleet.processes.map((p) => p.pid);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? CLIENTS : [...CLIENTS].reverse();
      for (const { name } of order) {
        const child = children.fork(`${name}-${round + 1}`, 'bench/bare-client.ts', []);
        try {
          await nextMessage(child, 'waiting', 60_000);
          const start: BareStart = {
            type: 'start',
            client: name,
            ports: fleet.ports,
            concurrency: 256,
            keptAlive: meters,
            timeoutMs: 5000,
            keepAliveMs: 65_000,
          };
          send(child, start);
          await nextMessage(child, 'started', 30_000);
          let simCpuMs = 0;
          for (let pass = 0; pass <= passes; pass++) {
            const warmup = pass === 0;
            const sim0 = totalCpuMs(simPids);
            send(child, { type: 'run-pass', warmup });
            await nextMessage(child, 'pass', 120_000);
            if (!warmup) simCpuMs += totalCpuMs(simPids) - sim0;
          }
          send(child, { type: 'finish' });
          const done = await nextMessage<BareDone>(child, 'done', 60_000);
          runs.push({ client: name, done, simCpuMs });
          const m = summarise([{ client: name, done, simCpuMs }]);
          out(
            `  round ${round + 1}, ${name}: ${int(m.pollsPerS)} polls/s, ${fixed(m.cpuPer1000, 3)} CPU-s per 1,000, ` +
              `failed ${m.failed}, peak RSS ${mb(done.maxRssKb)} MB`,
          );
        } finally {
          await children.stop(child);
        }
      }
    }
  } catch (error) {
    failure = error;
  } finally {
    await children.stopAll();
    children.closeLogs();
  }

  if (runs.length > 0) {
    out();
    const rows: string[][] = [
      ['client', 'polls/s (median pass)', 'polls/s (all passes)', 'CPU-s / 1,000 polls', 'simulator CPU-s / 1,000', 'peak RSS MB', 'failed'],
    ];
    for (const { name, label } of CLIENTS) {
      const mine = runs.filter((r) => r.client === name);
      if (mine.length === 0) continue;
      const m = summarise(mine);
      rows.push([
        label,
        int(m.medianPassPollsPerS),
        int(m.pollsPerS),
        fixed(m.cpuPer1000, 3),
        fixed(m.simCpuPer1000, 3),
        mb(Math.max(...mine.map((r) => r.done.maxRssKb))),
        int(m.failed),
      ]);
    }
    out(table(rows));
  }
  out();
  out(`load average before: ${loadBefore}   after: ${loadAverage()}   (${coreCount()} cores)`);
  out(`whole benchmark: ${seconds(performance.now() - started, 0)} s`);
  if (failure !== undefined) {
    out(`BENCHMARK FAILED TO RUN: ${failure instanceof Error ? failure.message : String(failure)} (logs in ${workDir})`);
    return 1;
  }
  rmSync(workDir, { recursive: true, force: true });
  return 0;
}

function summarise(runs: Run[]) {
  const passes = runs.flatMap((r) => r.done.passes.filter((p) => !p.warmup));
  const ok = sum(passes.map((p) => p.ok));
  return {
    pollsPerS: (ok * 1000) / sum(passes.map((p) => p.wallMs)),
    medianPassPollsPerS: median(passes.map((p) => (p.ok * 1000) / p.wallMs)),
    cpuPer1000: sum(passes.map((p) => p.cpuMs)) / ok,
    simCpuPer1000: sum(runs.map((r) => r.simCpuMs)) / ok,
    failed: sum(passes.map((p) => p.failed)),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      meters: { type: 'string' },
      passes: { type: 'string' },
      rounds: { type: 'string' },
      netns: { type: 'string' },
    },
  });
  const meters = Number(values.meters ?? 5000);
  const passes = Number(values.passes ?? 5);
  const rounds = Number(values.rounds ?? 2);
  if (!Number.isInteger(meters) || meters < 1 || meters > 9000) throw new Error('--meters must be 1..9000');
  if (!Number.isInteger(passes) || passes < 1) throw new Error('--passes must be >= 1');
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be >= 1');
  if (!isInner()) {
    const off = values.netns === 'off';
    process.exitCode = await relaunch(!off, off ? '--netns off' : null);
    return;
  }
  process.exitCode = await inner(meters, passes, rounds);
  setTimeout(() => process.exit(), 2000).unref();
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:clients: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
});
