/**
 * The real service in a process of its own (so that its CPU time and memory are its own): built with createApp
 * and loadConfig exactly as main.ts builds it, listening on the API port, polling disabled (no ticks). The
 * benchmark registers the meters over HTTP, then asks this process to run the service's own polling cycles,
 * PollingService.runCycle(), back to back, and measures them here.
 *
 * Protocol (IPC), step by step so that the benchmark can interleave it with the bare client: -> {type:'listening'};
 * <- {type:'run-cycle', warmup, profileFile?} -> {type:'cycle'}; <- {type:'finish'} -> {type:'done'};
 * <- {type:'exit'} (or SIGTERM) closes the app.
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { performance } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import { createApp } from '../src/bootstrap';
import { loadConfig } from '../src/config/app-config';
import { MeterClient } from '../src/polling/meter-client';
import { PollingService } from '../src/polling/polling.service';
import { ReadingWriter } from '../src/polling/reading-writer';

export interface ServiceRunCycle {
  type: 'run-cycle';
  warmup: boolean;
  /** Starts the V8 sampling profiler before this cycle (if not yet running); written at 'finish'. */
  profileFile?: string;
}

export interface ServiceCycle {
  type: 'cycle';
  index: number;
  warmup: boolean;
  meters: number;
  ok: number;
  failed: number;
  /** runCycle() as the caller sees it: claim, polls, final flush. */
  wallMs: number;
  /** CycleSummary.durationMs, the service's own figure. */
  durationMs: number;
  cpuMs: number;
  /** Of cpuMs, in the kernel. */
  sysMs: number;
  rowsStored: number;
  eventLoopUtilization: number;
  rssPeakKb: number;
  /** At the end of the cycle: V8 heap in use and reserved, and RSS. */
  heapUsedKb: number;
  heapTotalKb: number;
  rssEndKb: number;
  /** --gc-probe only: heap still in use after a full GC forced after the cycle (outside its timing). */
  heapLiveKb?: number;
}

export interface ServiceDone {
  type: 'done';
  /** After boot and registration, before the first cycle. */
  rssBeforeCyclesKb: number;
  cycles: ServiceCycle[];
  maxRssKb: number;
  metersUp: number;
  writer: { readingsWritten: number; writeFailures: number; buffered: number; dropped: number };
  keptAliveOrigins: number;
  profileFile?: string;
}

function reply(message: object): void {
  process.send?.(message);
}

/** The benchmark's requests, one at a time, in order. */
function messages(): () => Promise<{ type: string; [key: string]: unknown }> {
  const queue: { type: string }[] = [];
  let wake: (() => void) | undefined;
  process.on('message', (message: { type: string }) => {
    queue.push(message);
    wake?.();
  });
  return async () => {
    while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return queue.shift() as { type: string; [key: string]: unknown };
  };
}

async function count(dataSource: DataSource, sql: string): Promise<number> {
  const [row]: { n: number }[] = await dataSource.query(sql);
  return Number(row.n);
}

function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) =>
    session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result as T))),
  );
}

async function main(): Promise<void> {
  const env = process.env;
  const databaseUrl = env.BENCH_DATABASE_URL;
  if (!databaseUrl) throw new Error('BENCH_DATABASE_URL is not set');
  // Only what the benchmark needs differs from the defaults; everything else is loadConfig's own default.
  const config = loadConfig({
    PORT: env.BENCH_API_PORT,
    POLLING_ENABLED: 'false',
    POLL_SCHEDULE: 'burst',
    POLL_TIMEOUT_MS: '5000',
    POLL_INTERVAL_SECONDS: '60',
    POLL_CONCURRENCY: env.BENCH_CONCURRENCY,
    POLL_MAX_KEPT_ALIVE: env.BENCH_KEPT_ALIVE,
  });
  const app = await createApp(config, databaseUrl);
  await app.listen(config.app.port, '127.0.0.1');
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
    return closing;
  };
  process.once('SIGTERM', () => void close());
  process.once('disconnect', () => void close());
  const next = messages();
  reply({ type: 'listening' });

  let rssBeforeCyclesKb: number | undefined;
  const polling = app.get(PollingService);
  const dataSource = app.get(DataSource);
  const cycles: ServiceCycle[] = [];
  let session: Session | undefined;
  let profileFile: string | undefined;
  for (;;) {
    const message = await next();
    if (message.type === 'exit') break;
    if (message.type === 'finish') {
      if (session && profileFile) {
        const { profile } = await post<{ profile: object }>(session, 'Profiler.stop');
        writeFileSync(profileFile, JSON.stringify(profile));
        session.disconnect();
      }
      const done: ServiceDone = {
        type: 'done',
        cycles,
        rssBeforeCyclesKb: rssBeforeCyclesKb ?? 0,
        maxRssKb: process.resourceUsage().maxRSS,
        metersUp: await count(dataSource, "SELECT count(*)::int AS n FROM meters WHERE health_state = 'up'"),
        writer: { ...app.get(ReadingWriter).stats },
        keptAliveOrigins: app.get(MeterClient).keptAliveOrigins,
        profileFile,
      };
      reply(done);
      continue;
    }
    if (message.type !== 'run-cycle') continue;
    const request = message as unknown as ServiceRunCycle;
    rssBeforeCyclesKb ??= Math.round(process.memoryUsage.rss() / 1024);
    const warmup = request.warmup;
    // Bench-only shortcut: cycles run back to back instead of at ticks, so the claims of the previous cycle
    // (held until just before the next tick) are released by hand.
    await dataSource.query('UPDATE meters SET poll_claimed_until = NULL');
    const rowsBefore = await count(dataSource, 'SELECT count(*)::int AS n FROM readings');
    if (!warmup && request.profileFile && !session) {
      profileFile = request.profileFile;
      session = new Session();
      session.connect();
      await post(session, 'Profiler.enable');
      await post(session, 'Profiler.setSamplingInterval', { interval: 500 });
      await post(session, 'Profiler.start');
    }
    let rssPeak = process.memoryUsage.rss();
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    }, 200);
    const elu = performance.eventLoopUtilization();
    const cpu = process.cpuUsage();
    const started = performance.now();
    const summary = await polling.runCycle();
    const wallMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    const utilization = performance.eventLoopUtilization(elu).utilization;
    clearInterval(sampler);
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    const memory = process.memoryUsage();
    const rowsAfter = await count(dataSource, 'SELECT count(*)::int AS n FROM readings');
    const forceGc = (globalThis as { gc?: () => void }).gc;
    let heapLiveKb: number | undefined;
    if (forceGc) {
      forceGc();
      heapLiveKb = Math.round(process.memoryUsage().heapUsed / 1024);
    }
    const cycle: ServiceCycle = {
      type: 'cycle',
      index: cycles.length,
      warmup,
      meters: summary.meters,
      ok: summary.ok,
      failed: summary.failed,
      wallMs,
      durationMs: summary.durationMs,
      cpuMs: (used.user + used.system) / 1000,
      sysMs: used.system / 1000,
      rowsStored: rowsAfter - rowsBefore,
      eventLoopUtilization: utilization,
      rssPeakKb: Math.round(rssPeak / 1024),
      heapUsedKb: Math.round(memory.heapUsed / 1024),
      heapTotalKb: Math.round(memory.heapTotal / 1024),
      rssEndKb: Math.round(memory.rss / 1024),
      heapLiveKb,
    };
    cycles.push(cycle);
    reply(cycle);
  }
  await close();
}

main().catch((error: unknown) => {
  reply({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  setTimeout(() => process.exit(1), 200);
});
