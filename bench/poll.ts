/**
 * npm run bench:poll [-- --sizes 1000,10000,56001 --cycles 3 --profile --netns auto|off]
 *
 * For each network size N: N simulated meters on real ports 9000..9000+N-1 (several simulator processes), a
 * bare HTTP client reading them all (the reference), then the real service in its own process (createApp with
 * loadConfig, real PostgreSQL): the meters registered through POST /meters/bulk, one warm-up cycle and at least
 * three measured cycles of PollingService.runCycle(). Prints one table and the verdicts against the issue's
 * targets at N = 56,001, and exits. Exit code 1 only when the benchmark could not run; a missed target is a
 * FAIL line, not an error.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { loadConfig } from '../src/config/app-config';
import type { BareDone, BarePass, BareStart } from './bare-client';
import { Child, ChildRegistry, nextMessage, send } from './lib/children';
import { compileForChildren } from './lib/compile';
import { summariseProfile } from './lib/cpuprofile';
import { BenchDatabase, freePortFrom, openBenchDatabase } from './lib/database';
import { fixed, int, mb, median, percent, seconds, sum, table } from './lib/format';
import { currentIsolation, exitWithLauncher, isInner, Isolation, relaunch } from './lib/isolation';
import { coreCount, kernel, loadAverage, oneMinuteLoad, pidsWorkingIn, totalCpuMs } from './lib/machine';
import { Fleet, startFleet } from './lib/simulators';
import type { ServiceCycle, ServiceDone } from './service-child';

const FIRST_METER_PORT = 9000;
const FULL_NETWORK = 56_001;
/** Ports standing in for meter ports that cannot be bound: above the meter range, outside the ephemeral range. */
const SPARE_PORTS = range(65_001, 65_535);
const POLL_TIMEOUT_MS = 5000;
const INTERVAL_SECONDS = 60;
const TARGETS = { cycleMs: 45_000, rssMb: 400, ratio: 0.7, bulkMs: 10_000, intervalAimS: 15 };

interface Options {
  sizes: number[];
  cycles: number;
  warmup: number;
  profile: boolean;
  gcProbe: boolean;
  serviceMaxOldSpaceMb: number | null;
  netns: 'auto' | 'off';
  maxMinutes: number;
}

interface SizeResult {
  n: number;
  skipped?: string;
  fleet?: Fleet;
  bare?: BareDone;
  service?: ServiceDone;
  bulkMs?: number;
  bulkCreated?: number;
  pgCpuMs?: number;
  simCpuMs?: number;
  loadAtStart: number;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      sizes: { type: 'string' },
      cycles: { type: 'string' },
      warmup: { type: 'string' },
      profile: { type: 'boolean' },
      'gc-probe': { type: 'boolean' },
      'service-max-old-space': { type: 'string' },
      netns: { type: 'string' },
      'max-minutes': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm run bench:poll -- [--sizes 1000,10000,56001] [--cycles 3] [--warmup 1] [--profile]\n' +
        '                            [--gc-probe] [--service-max-old-space MB] [--netns auto|off]\n' +
        '                            [--max-minutes 45]\n' +
        '  --profile   CPU profile of the service over the measured cycles (top costs printed)\n' +
        '  --gc-probe  force a full GC after each cycle (outside its timing) and print the live heap\n' +
        '  --service-max-old-space MB  run the service with --max-old-space-size=MB (default: as shipped, none)\n',
    );
    process.exit(0);
  }
  const sizes = (values.sizes ?? '1000,10000,56001').split(',').map((s) => Number(s.replace(/[_\s]/g, '')));
  for (const n of sizes) {
    if (!Number.isInteger(n) || n < 1 || FIRST_METER_PORT + n - 1 > 65_000) {
      throw new Error(`--sizes: each size must be an integer from 1 to ${FULL_NETWORK} (ports 9000-65000)`);
    }
  }
  const cycles = Number(values.cycles ?? 3);
  const warmup = Number(values.warmup ?? 1);
  const maxMinutes = Number(values['max-minutes'] ?? 45);
  if (!Number.isInteger(cycles) || cycles < 3) throw new Error('--cycles must be an integer >= 3');
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error('--warmup must be an integer >= 0');
  if (!(maxMinutes > 0)) throw new Error('--max-minutes must be > 0');
  const netns = values.netns ?? 'auto';
  if (netns !== 'auto' && netns !== 'off') throw new Error('--netns must be auto or off');
  const oldSpace = values['service-max-old-space'];
  const serviceMaxOldSpaceMb = oldSpace === undefined ? null : Number(oldSpace);
  if (serviceMaxOldSpaceMb !== null && !(Number.isInteger(serviceMaxOldSpaceMb) && serviceMaxOldSpaceMb >= 64)) {
    throw new Error('--service-max-old-space must be an integer number of MB >= 64');
  }
  return {
    sizes,
    cycles,
    warmup,
    profile: values.profile ?? false,
    gcProbe: values['gc-probe'] ?? false,
    serviceMaxOldSpaceMb,
    netns,
    maxMinutes,
  };
}

const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

// ---------------------------------------------------------------------------------------------------------------

class Bench {
  readonly children: ChildRegistry;
  private readonly workDir: string;
  private database: BenchDatabase | undefined;
  private apiPort = 0;
  private readonly defaults = loadConfig({}).polling;
  private keptAlive: number;
  private metersPerSimulator: number;

  constructor(
    private readonly options: Options,
    private readonly isolation: Isolation,
  ) {
    this.workDir = mkdtempSync(join(tmpdir(), 'em-bench-'));
    this.children = new ChildRegistry(this.workDir);
    const soft = isolation.limit.soft;
    // The service and the bare client hold one socket per kept-alive meter, plus in-flight one-shot connections,
    // the database pool and the API; a simulator holds a listener and a connection per meter.
    this.keptAlive = Math.max(0, Math.min(this.defaults.maxKeptAlive, soft - this.defaults.concurrency - 1000));
    // Both clients stay alive side by side (interleaved): a listener and up to two kept-alive connections a meter.
    this.metersPerSimulator = Math.max(100, Math.min(6300, Math.floor((soft - 1000) / 3)));
  }

  async run(): Promise<number> {
    const loadBefore = loadAverage();
    const started = performance.now();
    this.header(loadBefore);
    const results: SizeResult[] = [];
    let failure: unknown;
    try {
      const compiled = compileForChildren(join(this.workDir, 'js'));
      this.children.useCompiled(compiled);
      out(`children run plain JavaScript: ${compiled.files} files transpiled ahead in ${seconds(compiled.ms, 1)} s (no ts-node in measured processes)`);
      const pgPort = await freePortFrom(8432, 8499);
      this.apiPort = await freePortFrom(8765, 8799);
      this.database = await openBenchDatabase(pgPort, (line) => out(`  ${line}`));
      out(`database: ${this.database.description}, PostgreSQL ${await this.database.version()}; a fresh database per N`);
      out(`service API on 127.0.0.1:${this.apiPort}; logs of every child process in ${this.workDir}`);
      out();
      for (const n of this.options.sizes) results.push(await this.runSize(n));
    } catch (error) {
      failure = error;
    } finally {
      await this.cleanup();
    }
    const loadAfter = loadAverage();
    if (results.length > 0) this.report(results);
    out();
    out(`load average before: ${loadBefore}   after: ${loadAfter}   (${coreCount()} cores)`);
    out(`whole benchmark: ${seconds(performance.now() - started, 0)} s`);
    if (failure !== undefined) {
      out();
      out(`BENCHMARK FAILED TO RUN: ${failure instanceof Error ? failure.message : String(failure)}`);
      out(`(child logs kept in ${this.workDir})`);
      return 1;
    }
    if (results.some((r) => r.skipped)) return 1;
    if (this.options.profile) out(`profiles and child logs kept in ${this.workDir}`);
    else rmSync(this.workDir, { recursive: true, force: true });
    return 0;
  }

  private cleaning: Promise<void> | undefined;

  /** Stops every child and the embedded database; safe to call more than once (signals, watchdog). */
  cleanup(): Promise<void> {
    this.cleaning ??= (async () => {
      await this.children.stopAll(3000);
      await this.database?.close().catch((error: unknown) => out(`could not stop PostgreSQL: ${String(error)}`));
      this.children.closeLogs();
    })();
    return this.cleaning;
  }

  private header(loadBefore: string): void {
    const iso = this.isolation;
    const limit = iso.limit;
    out('Electric Meter polling benchmark (npm run bench:poll)');
    out(`machine: ${coreCount()} cores, Linux ${kernel()}, Node ${process.version}, load average ${loadBefore}`);
    const raised =
      iso.softBefore !== null && iso.softBefore < limit.soft
        ? `raised from ${iso.softBefore} to the hard limit`
        : iso.raiseRefused
          ? 'COULD NOT be raised (ulimit -n refused)'
          : 'already at the hard limit';
    out(`open files: soft ${limit.soft}, hard ${limit.hard} (${raised})`);
    if (limit.soft < 20_000) {
      out(`  below 20,000: kept-alive meters capped at ${this.keptAlive}, ${this.metersPerSimulator} meters per simulator`);
    }
    const eph = iso.ephemeralRange ? `${iso.ephemeralRange[0]}-${iso.ephemeralRange[1]}` : '?';
    out(`network: ${iso.netns} namespace, ephemeral ports ${eph}; ${iso.netnsNote}`);
    out(
      `service: createApp(loadConfig(env)) with POLL_SCHEDULE=burst POLL_TIMEOUT_MS=${POLL_TIMEOUT_MS} ` +
        `POLL_INTERVAL_SECONDS=${INTERVAL_SECONDS} POLL_CONCURRENCY=${this.defaults.concurrency} ` +
        `POLL_MAX_KEPT_ALIVE=${this.keptAlive} POLLING_ENABLED=false (cycles started by the benchmark); node ` +
        (this.options.serviceMaxOldSpaceMb
          ? `--max-old-space-size=${this.options.serviceMaxOldSpaceMb}`
          : 'without heap flags (as npm start runs it)'),
    );
    out(
      `cycles: ${this.options.warmup} warm-up + ${this.options.cycles} measured, interleaved with the bare client's ` +
        'passes in ABBA order (bare, service, service, bare, ...: the same machine conditions for both); before each cycle the ' +
        'benchmark releases the claims (UPDATE meters SET poll_claimed_until = NULL), a bench-only shortcut since ' +
        'cycles run on demand, not at ticks',
    );
    out(
      `bare client: the service's transport (undici Client per origin, one-shot reads through an Agent), same ` +
        `concurrency (${this.defaults.concurrency}) and keep-alive cap (${this.keptAlive}, the rest on one-shot ` +
        'connections), JSON.parse + id check; no framework, no database; ' +
        `${this.options.warmup} warm-up + ${this.options.cycles} measured passes, in its own process`,
    );
    if (this.options.profile) out('profile: ON (the service runs under the V8 sampling profiler: its figures are slower)');
    out();
  }

  // -------------------------------------------------------------------------------------------------------------

  private async runSize(n: number): Promise<SizeResult> {
    const label = `N=${int(n)}`;
    const result: SizeResult = { n, loadAtStart: oneMinuteLoad() };
    const ports = range(FIRST_METER_PORT, FIRST_METER_PORT + n - 1);
    const eph = this.isolation.ephemeralRange;
    if (this.isolation.netns === 'shared' && eph && ports[0] <= eph[0] && ports[ports.length - 1] >= eph[1]) {
      result.skipped =
        `meter ports ${ports[0]}-${ports[ports.length - 1]} would hold every ephemeral port (${eph[0]}-${eph[1]}) of ` +
        'the shared network namespace: no process on this machine could open a TCP connection (EADDRNOTAVAIL). ' +
        'Needs the private namespace (root, unshare, no DATABASE_URL).';
      out(`[${label}] SKIPPED: ${result.skipped}`);
      return result;
    }
    if (this.isolation.netns === 'shared' && eph && ports[ports.length - 1] >= eph[0]) {
      out(`[${label}] warning: meter ports overlap the ephemeral range ${eph[0]}-${eph[1]} of the shared namespace`);
    }

    // Meters first, before this size opens any outgoing connection.
    const fleet = await startFleet(this.children, `n${n}`, ports, this.metersPerSimulator, SPARE_PORTS);
    result.fleet = fleet;
    out(
      `[${label}] simulators: ${int(fleet.ports.length)} meters on ${fleet.processes.length} processes in ` +
        `${seconds(fleet.startMs, 1)} s; ${fleet.failed.length} port(s) could not be bound` +
        (fleet.failed.length > 0
          ? ` (first: ${fleet.failed[0].port} ${fleet.failed[0].error}; ${fleet.spares.length} served on spare ports ` +
            `65001+ instead; a port left in TIME_WAIT by an earlier run frees itself within ~60 s)`
          : ''),
    );
    const simPids = fleet.processes.map((p) => p.pid);
    const pgPids = () => (this.database!.dataDir ? pidsWorkingIn(this.database!.dataDir) : []);
    const dbName = `em_bench_${n}`;
    const bare = this.children.fork(`${label}-bare`, 'bench/bare-client.ts', []);
    let service: Child | undefined;
    try {
      await nextMessage(bare, 'waiting', 60_000);
      const start: BareStart = {
        type: 'start',
        client: 'undici-client',
        ports: fleet.ports,
        concurrency: this.defaults.concurrency,
        keptAlive: this.keptAlive,
        timeoutMs: POLL_TIMEOUT_MS,
        keepAliveMs: INTERVAL_SECONDS * 1000 + 5000,
        profileFile: this.options.profile ? join(this.workDir, `bare-${n}.cpuprofile`) : undefined,
      };
      send(bare, start);
      await nextMessage(bare, 'started', 30_000);

      const url = await this.database!.create(dbName);
      service = this.children.fork(`${label}-service`, 'bench/service-child.ts', [], {
        env: {
          BENCH_DATABASE_URL: url,
          BENCH_API_PORT: String(this.apiPort),
          BENCH_CONCURRENCY: String(this.defaults.concurrency),
          BENCH_KEPT_ALIVE: String(this.keptAlive),
        },
        execArgv: [
          ...(this.options.gcProbe ? ['--expose-gc'] : []),
          ...(this.options.serviceMaxOldSpaceMb ? [`--max-old-space-size=${this.options.serviceMaxOldSpaceMb}`] : []),
        ],
      });
      await nextMessage(service, 'listening', 120_000);
      await this.register(label, fleet.ports, result);

      // Interleaved in ABBA order (bare, service, service, bare, ...): both see the same machine, and neither
      // always runs right after the other's connections (TIME_WAIT, caches).
      let pgCpuMs = 0;
      let simCpuMs = 0;
      const rounds = this.options.warmup + this.options.cycles;
      for (let round = 0; round < rounds; round++) {
        const warmup = round < this.options.warmup;
        const serviceFirst = round % 2 === 1;
        for (const step of serviceFirst ? ['service', 'bare'] : ['bare', 'service']) {
          if (step === 'bare') {
            send(bare, { type: 'run-pass', warmup });
            const pass = await nextMessage<BarePass>(bare, 'pass', 300_000);
            out(
              `[${label}] bare ${warmup ? 'warm-up' : 'pass'} ${round + 1}: ${int(pass.ok)} ok, ${int(pass.failed)} failed ` +
                `in ${seconds(pass.wallMs)} s (${int((pass.ok * 1000) / pass.wallMs)} polls/s, ` +
                `${fixed(pass.cpuMs / 1000, 2)} CPU-s of which ${fixed(pass.sysMs / 1000, 2)} kernel)` +
                (pass.firstErrors.length > 0 ? `; first errors: ${pass.firstErrors.join(', ')}` : ''),
            );
          } else {
            const pg0 = totalCpuMs(pgPids());
            const sim0 = totalCpuMs(simPids);
            send(service, { type: 'run-cycle', warmup, profileFile: this.options.profile ? join(this.workDir, `service-${n}.cpuprofile`) : undefined });
            const cycle = await nextMessage<ServiceCycle>(service, 'cycle', 300_000);
            if (!warmup) {
              pgCpuMs += totalCpuMs(pgPids()) - pg0;
              simCpuMs += totalCpuMs(simPids) - sim0;
            }
            out(
              `[${label}] service ${warmup ? 'warm-up' : 'cycle'} ${round + 1}: ${int(cycle.ok)} ok, ` +
                `${int(cycle.failed)} failed, ${int(cycle.rowsStored)} readings stored in ${seconds(cycle.wallMs)} s ` +
                `(${int((cycle.ok * 1000) / cycle.wallMs)} polls/s, ${fixed(cycle.cpuMs / 1000, 2)} CPU-s of which ` +
                `${fixed(cycle.sysMs / 1000, 2)} kernel, event loop ${percent(cycle.eventLoopUtilization)} busy; ` +
                `heap ${mb(cycle.heapUsedKb)}/${mb(cycle.heapTotalKb)} MB, RSS ${mb(cycle.rssEndKb)} MB` +
                (cycle.heapLiveKb === undefined ? ')' : `; live heap after a forced GC ${mb(cycle.heapLiveKb)} MB)`),
            );
          }
        }
      }
      send(bare, { type: 'finish' });
      result.bare = await nextMessage<BareDone>(bare, 'done', 60_000);
      send(service, { type: 'finish' });
      result.service = await nextMessage<ServiceDone>(service, 'done', 60_000);
      result.pgCpuMs = pgCpuMs;
      result.simCpuMs = simCpuMs;
      send(service, { type: 'exit' });
      const exiting = service.process;
      await Promise.race([
        new Promise((resolve) => exiting.once('exit', resolve)),
        new Promise((resolve) => setTimeout(resolve, 30_000)),
      ]);
    } finally {
      await this.children.stop(bare);
      if (service) await this.children.stop(service);
      await this.database!.drop(dbName).catch((error: unknown) => out(`  could not drop ${dbName}: ${String(error)}`));
      await Promise.all(fleet.processes.map((p) => this.children.stop(p)));
    }
    return result;
  }

  /** POST /meters/bulk with every meter of this size in one JSON request, timed from request to answer. */
  private async register(label: string, ports: number[], result: SizeResult): Promise<void> {
    const body = JSON.stringify(ports.map((port) => ({ meter_id: String(port), address: '127.0.0.1', port })));
    const started = performance.now();
    const response = await request(`http://127.0.0.1:${this.apiPort}/meters/bulk`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      headersTimeout: 120_000,
      bodyTimeout: 120_000,
    });
    const answer = (await response.body.json()) as { created_count?: number; refused_count?: number; refused?: unknown[] };
    result.bulkMs = performance.now() - started;
    result.bulkCreated = answer.created_count ?? 0;
    out(
      `[${label}] POST /meters/bulk: ${int(result.bulkCreated)} created, ${int(answer.refused_count ?? 0)} refused ` +
        `in ${seconds(result.bulkMs)} s (${int(body.length / 1024)} KiB of JSON)`,
    );
    if (response.statusCode !== 200 || result.bulkCreated !== ports.length) {
      throw new Error(
        `bulk registration answered HTTP ${response.statusCode} with ${result.bulkCreated} of ${ports.length} created: ` +
          JSON.stringify(answer.refused?.slice(0, 3) ?? answer),
      );
    }
  }

  // -------------------------------------------------------------------------------------------------------------

  private report(results: SizeResult[]): void {
    const ran = results.filter((r) => r.service && r.bare);
    out();
    out('Results (measured cycles/passes only unless marked; CPU of the named process alone)');
    const metrics = ran.map((r) => measure(r));
    const rows: string[][] = [['', ...ran.map((r) => `N=${int(r.n)}`)]];
    const add = (name: string, cell: (m: Measured, r: SizeResult) => string) =>
      rows.push([name, ...ran.map((r, i) => cell(metrics[i], r))]);
    add('meters served (on spare ports)', (m, r) => `${int(r.fleet!.ports.length)} (${r.fleet!.spares.length})`);
    add('bulk registration, s', (_m, r) => seconds(r.bulkMs ?? Number.NaN));
    add('polls/s: service', (m) => int(m.servicePollsPerS));
    add('polls/s: bare client', (m) => int(m.barePollsPerS));
    add('service / bare', (m) => percent(m.ratio));
    add('cycle wall, s: median', (m) => seconds(m.cycleMedianMs));
    add('cycle wall, s: worst', (m) => seconds(m.cycleWorstMs));
    add('warm-up cycle wall, s (new connections)', (m) => seconds(m.warmupWorstMs));
    add('CPU-s per 1,000 stored polls: service', (m) => fixed(m.serviceCpuPer1000, 3));
    add('  of which kernel (sys)', (m) => fixed(m.serviceSysPer1000, 3));
    add('CPU-s per 1,000 polls: bare client', (m) => fixed(m.bareCpuPer1000, 3));
    add('  of which kernel (sys)', (m) => fixed(m.bareSysPer1000, 3));
    add('CPU-s per 1,000: PostgreSQL (all backends)', (m) => fixed(m.pgCpuPer1000, 3));
    add('CPU-s per 1,000: simulators', (m) => fixed(m.simCpuPer1000, 3));
    add('service event loop busy', (m) => percent(m.serviceElu));
    add('peak RSS MB: service (whole life)', (_m, r) => mb(r.service!.maxRssKb));
    add('peak RSS MB: service (during cycles)', (m) => mb(m.serviceCycleRssKb));
    add('RSS MB: service after registration, before cycles', (_m, r) => mb(r.service!.rssBeforeCyclesKb));
    add('V8 heap used MB: service, end of last cycle', (_m, r) => mb(r.service!.cycles[r.service!.cycles.length - 1].heapUsedKb));
    add('peak RSS MB: bare client', (_m, r) => mb(r.bare!.maxRssKb));
    add('readings written/s', (m) => int(m.readingsPerS));
    add('readings stored / ok polls (all cycles)', (m) => `${int(m.storedAll)} / ${int(m.okAll)}`);
    add('failed polls: service (measured + warm-up)', (m) => `${int(m.serviceFailed)} + ${int(m.serviceWarmupFailed)}`);
    add('failed polls: bare client', (m) => int(m.bareFailed));
    add('meters "up" after the run', (_m, r) => int(r.service!.metersUp));
    add('kept-alive origins: service / bare', (_m, r) => `${int(r.service!.keptAliveOrigins)} / ${int(r.bare!.keptAliveOrigins)}`);
    add('load average (1 min) at start', (_m, r) => fixed(r.loadAtStart, 2));
    out(table(rows));
    for (const r of results.filter((x) => x.skipped)) out(`N=${int(r.n)}: SKIPPED: ${r.skipped}`);

    for (const r of ran) {
      if (r.service?.profileFile) this.printProfile('the service', r.n, r.service.profileFile);
      const bareProfile = join(this.workDir, `bare-${r.n}.cpuprofile`);
      if (this.options.profile && existsSync(bareProfile)) this.printProfile('the bare client', r.n, bareProfile);
    }

    const full = ran.find((r) => r.n === FULL_NETWORK);
    out();
    if (!full) {
      out(`Targets at N = ${int(FULL_NETWORK)}: not measured in this run (--sizes)`);
      return;
    }
    const m = measure(full);
    const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL');
    out(`Targets at N = ${int(FULL_NETWORK)}${this.options.profile ? ' (profiled run: slower than normal)' : ''}`);
    const allCycles = full.service!.cycles;
    const worstAll = Math.max(...allCycles.map((c) => c.wallMs));
    const storedOk = allCycles.every((c) => c.rowsStored === c.ok);
    const verdicts: [string, boolean, string][] = [
      [
        `every cycle completes inside ${TARGETS.cycleMs / 1000} s`,
        worstAll < TARGETS.cycleMs,
        `worst ${seconds(worstAll)} s over all ${allCycles.length} cycles (warm-up included)`,
      ],
      [
        'zero failed polls against healthy meters',
        m.serviceFailed + m.serviceWarmupFailed === 0,
        `${m.serviceFailed + m.serviceWarmupFailed} failed (all ${int(full.fleet!.ports.length)} meters healthy)`,
      ],
      ['every reading stored', storedOk && m.okAll > 0, `${int(m.storedAll)} rows for ${int(m.okAll)} ok polls, checked per cycle`],
      [`peak RSS under ${TARGETS.rssMb} MB`, full.service!.maxRssKb / 1024 < TARGETS.rssMb, `${mb(full.service!.maxRssKb)} MB (whole life of the process)`],
      [
        `service >= ${percent(TARGETS.ratio)} of the bare client's polls/s`,
        m.ratio >= TARGETS.ratio,
        `${int(m.servicePollsPerS)} vs ${int(m.barePollsPerS)} polls/s = ${percent(m.ratio)}`,
      ],
      [
        `bulk registration under ${TARGETS.bulkMs / 1000} s`,
        (full.bulkMs ?? Infinity) < TARGETS.bulkMs,
        `${seconds(full.bulkMs ?? Number.NaN)} s`,
      ],
    ];
    out(table(verdicts.map(([what, ok, detail]) => [`  ${verdict(ok)}  ${what}`, detail]), true));

    const worstS = m.cycleWorstMs / 1000;
    const spread = shortestSpreadInterval(m.cycleWorstMs, POLL_TIMEOUT_MS);
    const burst = Math.floor(worstS) + 1;
    out();
    out(
      `Shortest full-network interval (all ${int(FULL_NETWORK)} read every cycle): ${spread} s with the default ` +
        `spread schedule; ${burst} s with POLL_SCHEDULE=burst.`,
    );
    out(
      `  derived: worst measured cycle ${fixed(worstS, 2)} s rounded up to ${Math.ceil(worstS)} s, plus the poll ` +
        `deadline's margin: the spread schedule starts every poll inside I - ${POLL_TIMEOUT_MS / 1000} s (deadline) - ` +
        'min(1 s, 5% of I), so that window must hold a whole burst cycle: smallest I with ' +
        `I - ${POLL_TIMEOUT_MS / 1000} - min(1, 0.05 I) >= ${Math.ceil(worstS)}. A burst cycle only has to end before ` +
        'the next tick (I > worst cycle).',
    );
    const aim = TARGETS.intervalAimS;
    const neededSpread = FULL_NETWORK / (aim - POLL_TIMEOUT_MS / 1000 - Math.min(1, 0.05 * aim));
    out(
      `  aim ${aim} s: ${spread <= aim ? 'MET' : 'NOT MET'} with the spread schedule (needs ~${int(neededSpread)} polls/s ` +
        `sustained, measured ${int(m.servicePollsPerS)}); ${burst <= aim ? 'met' : 'not met'} in burst mode (needs ` +
        `${int(FULL_NETWORK / aim)} polls/s). The first cycle after a start opens every connection ` +
        `(${seconds(m.warmupWorstMs)} s here); a cycle that overruns makes the next tick skip, it loses no reading.`,
    );
  }

  private printProfile(who: string, n: number, file: string): void {
    const summary = summariseProfile(file, 25);
    out();
    out(`CPU profile of ${who}, measured cycles at N=${int(n)} (${seconds(summary.totalMs, 1)} s of samples, idle excluded): ${file}`);
    out('  by area (self time):');
    for (const line of summary.areas.slice(0, 15)) out(`    ${percent(line.share).padStart(4)}  ${line.name}`);
    out('  by function (self time):');
    for (const line of summary.functions) out(`    ${percent(line.share).padStart(4)}  ${line.name}`);
  }
}

interface Measured {
  servicePollsPerS: number;
  barePollsPerS: number;
  ratio: number;
  cycleMedianMs: number;
  cycleWorstMs: number;
  warmupWorstMs: number;
  serviceCpuPer1000: number;
  serviceSysPer1000: number;
  bareCpuPer1000: number;
  bareSysPer1000: number;
  pgCpuPer1000: number;
  simCpuPer1000: number;
  serviceElu: number;
  serviceCycleRssKb: number;
  readingsPerS: number;
  storedAll: number;
  okAll: number;
  serviceFailed: number;
  serviceWarmupFailed: number;
  bareFailed: number;
}

function measure(r: SizeResult): Measured {
  const cycles = r.service!.cycles.filter((c) => !c.warmup);
  const warmups = r.service!.cycles.filter((c) => c.warmup);
  const passes = r.bare!.passes.filter((p) => !p.warmup);
  const cycleWall = sum(cycles.map((c) => c.wallMs));
  const stored = sum(cycles.map((c) => c.rowsStored));
  const serviceOk = sum(cycles.map((c) => c.ok));
  const bareOk = sum(passes.map((p) => p.ok));
  const servicePollsPerS = (serviceOk * 1000) / cycleWall;
  const barePollsPerS = (bareOk * 1000) / sum(passes.map((p) => p.wallMs));
  return {
    servicePollsPerS,
    barePollsPerS,
    ratio: servicePollsPerS / barePollsPerS,
    cycleMedianMs: median(cycles.map((c) => c.wallMs)),
    cycleWorstMs: Math.max(...cycles.map((c) => c.wallMs)),
    warmupWorstMs: warmups.length > 0 ? Math.max(...warmups.map((c) => c.wallMs)) : Number.NaN,
    serviceCpuPer1000: sum(cycles.map((c) => c.cpuMs)) / stored,
    serviceSysPer1000: sum(cycles.map((c) => c.sysMs)) / stored,
    bareCpuPer1000: sum(passes.map((p) => p.cpuMs)) / bareOk,
    bareSysPer1000: sum(passes.map((p) => p.sysMs)) / bareOk,
    pgCpuPer1000: (r.pgCpuMs ?? Number.NaN) / stored,
    simCpuPer1000: (r.simCpuMs ?? Number.NaN) / serviceOk,
    serviceElu: sum(cycles.map((c) => c.eventLoopUtilization * c.wallMs)) / cycleWall,
    serviceCycleRssKb: Math.max(...r.service!.cycles.map((c) => c.rssPeakKb)),
    readingsPerS: (stored * 1000) / cycleWall,
    storedAll: sum(r.service!.cycles.map((c) => c.rowsStored)),
    okAll: sum(r.service!.cycles.map((c) => c.ok)),
    serviceFailed: sum(cycles.map((c) => c.failed)),
    serviceWarmupFailed: sum(warmups.map((c) => c.failed)),
    bareFailed: sum(passes.map((p) => p.failed)),
  };
}

/** Smallest whole interval I (s) whose spread window, I - deadline - min(1 s, 5% of I), holds `cycleMs`. */
export function shortestSpreadInterval(cycleMs: number, timeoutMs: number): number {
  for (let seconds_ = 1; seconds_ <= 86_400; seconds_++) {
    const windowMs = seconds_ * 1000 - timeoutMs - Math.min(1000, seconds_ * 50);
    if (windowMs >= Math.ceil(cycleMs / 1000) * 1000) return seconds_;
  }
  return Number.POSITIVE_INFINITY;
}

// ---------------------------------------------------------------------------------------------------------------

async function inner(options: Options): Promise<number> {
  const bench = new Bench(options, currentIsolation());
  // Whatever happens, no simulator or service is left holding ports.
  process.on('exit', () => bench.children.killAllNow());
  const abort = (why: string) => {
    out(`\n${why}: stopping every child process and the database`);
    const hardStop = setTimeout(() => process.exit(1), 20_000);
    void bench.cleanup().finally(() => {
      clearTimeout(hardStop);
      process.exit(1);
    });
  };
  process.once('SIGINT', () => abort('SIGINT'));
  process.once('SIGTERM', () => abort('SIGTERM'));
  exitWithLauncher(() => abort('launcher gone'));
  const watchdog = setTimeout(() => abort(`time limit (${options.maxMinutes} min, --max-minutes) reached`), options.maxMinutes * 60_000);
  watchdog.unref();
  return bench.run();
}

async function main(): Promise<void> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench:poll: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
  if (!isInner()) {
    const whyNot =
      options.netns === 'off'
        ? '--netns off'
        : process.env.DATABASE_URL
          ? 'DATABASE_URL is set (its server is only reachable from the shared namespace)'
          : null;
    process.exitCode = await relaunch(whyNot === null, whyNot);
    return;
  }
  process.exitCode = await inner(options);
  // Handles the children or the database driver may leave behind must not keep the run alive.
  setTimeout(() => process.exit(), 2000).unref();
}

void main();
