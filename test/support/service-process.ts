import { ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

/** The service as an operator runs it: `node -r ts-node/register/transpile-only src/main.ts`, its own process. */

const PROJECT_DIR = resolve(__dirname, '..', '..');
/** A start with ts-node takes ~3-8 s here; more when the machine is busy. */
export const START_TIMEOUT_MS = 45_000;

/** Variables of this service that must come only from the test, never from the shell that runs Jest. */
const SERVICE_VARIABLES =
  /^(DATABASE_URL|PORT|POLL_.*|POLLING_ENABLED|METER_.*|STATS_TIMEZONE|EMBEDDED_PG_.*|SHUTDOWN_GRACE_MS|HTTP_.*|API_.*|LOG_LEVEL|TEST_.*)$/;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcess {
  child: ChildProcess;
  port: number;
  exited: Promise<Exit>;
  /** Everything it printed, stdout and stderr together. */
  output(): string;
  /** What it printed on stdout alone (its log lines). */
  stdout(): string;
  /** The last part of its output, for failure messages. */
  tail(): string;
}

const started = new Set<ChildProcess>();

export function startService(port: number, env: Record<string, string>): ServiceProcess {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !SERVICE_VARIABLES.test(name)));
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
    cwd: PROJECT_DIR,
    env: { ...base, PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  started.add(child);
  let output = '';
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
    stdout += chunk;
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<Exit>((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));
  return {
    child,
    port,
    exited,
    output: () => output,
    stdout: () => stdout,
    tail: () => `--- output of the service ---\n${output.slice(-4000)}`,
  };
}

/** The exit of `service`, or a failure naming what was awaited after `ms`. */
export function exitWithin(service: ServiceProcess, ms: number, what: string): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Exit>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no exit within ${ms} ms\n${service.tail()}`)), ms);
  });
  return Promise.race([service.exited, late]).finally(() => clearTimeout(timer));
}

/** Waits until GET /health answers 200; fails early when the process exits first. */
export async function waitUntilHealthy(service: ServiceProcess): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let exit: Exit | undefined;
  void service.exited.then((value) => (exit = value));
  for (;;) {
    if (exit) throw new Error(`the service exited (${JSON.stringify(exit)}) before it was healthy\n${service.tail()}`);
    try {
      const response = await fetch(`http://127.0.0.1:${service.port}/health`, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no healthy answer within ${START_TIMEOUT_MS} ms\n${service.tail()}`);
    await new Promise((wake) => setTimeout(wake, 150));
  }
}

/** Kills (SIGKILL, whole process group) every service this module started that is still running. */
export function killStartedServices(): void {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  started.clear();
}
