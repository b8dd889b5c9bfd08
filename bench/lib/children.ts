/**
 * The benchmark's child processes: started with an IPC channel, their output kept in a log file (and the last
 * lines in memory, for error messages), stopped by their own pid only (never by name).
 */
import { ChildProcess, fork } from 'node:child_process';
import { createWriteStream, WriteStream } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(__dirname, '..', '..');
/** TypeScript sources run directly, as `npm run simulator` does. */
export const TS_NODE_ARGS = ['-r', 'ts-node/register/transpile-only'];

export interface Child {
  name: string;
  process: ChildProcess;
  pid: number;
  /** The last lines it printed (stdout and stderr). */
  tail(): string;
}

export class ChildRegistry {
  private readonly running = new Set<Child>();
  private readonly logs: WriteStream[] = [];

  private compiled: { outDir: string; env: NodeJS.ProcessEnv } | undefined;

  constructor(private readonly logDir: string) {}

  /** From now on, children run the JavaScript transpiled into `outDir` (see compile.ts) instead of ts-node. */
  useCompiled(compiled: { outDir: string; env: NodeJS.ProcessEnv }): void {
    this.compiled = compiled;
  }

  /** `modulePath`: a .ts file relative to the repository. */
  fork(name: string, modulePath: string, args: string[], options: { env?: NodeJS.ProcessEnv; execArgv?: string[] } = {}): Child {
    const compiled = this.compiled;
    const path = compiled ? join(compiled.outDir, modulePath.replace(/\.ts$/, '.js')) : resolve(REPO_ROOT, modulePath);
    const child = fork(path, args, {
      cwd: REPO_ROOT,
      execArgv: [...(compiled ? [] : TS_NODE_ARGS), ...(options.execArgv ?? [])],
      env: { ...process.env, ...(compiled?.env ?? {}), ...(options.env ?? {}) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const log = createWriteStream(join(this.logDir, `${name}.log`), { flags: 'a' });
    this.logs.push(log);
    const lines: string[] = [];
    const keep = (chunk: Buffer) => {
      log.write(chunk);
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        lines.push(line);
        if (lines.length > 40) lines.shift();
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const entry: Child = { name, process: child, pid: child.pid ?? -1, tail: () => lines.join('\n') };
    this.running.add(entry);
    child.once('exit', () => this.running.delete(entry));
    // A child that dies takes its IPC channel with it; errors on a closed channel are not ours to crash on.
    child.on('error', () => undefined);
    return entry;
  }

  /** SIGTERM, then SIGKILL after `graceMs`, to this child only. */
  async stop(child: Child, graceMs = 5000): Promise<void> {
    const proc = child.process;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((done) => proc.once('exit', () => done()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }, graceMs);
    await exited;
    clearTimeout(timer);
  }

  async stopAll(graceMs = 5000): Promise<void> {
    await Promise.all([...this.running].map((child) => this.stop(child, graceMs)));
  }

  /** Synchronous last resort (process 'exit' handler): SIGKILL to every child still running. */
  killAllNow(): void {
    for (const child of this.running) {
      if (child.process.exitCode === null) child.process.kill('SIGKILL');
    }
  }

  closeLogs(): void {
    for (const log of this.logs) log.end();
  }
}

export class ChildFailed extends Error {}

/**
 * The next message of `type` from the child. Rejects when the child exits first, sends {type:'error'}, or the
 * time runs out; progress messages go to `onOther`.
 */
export function nextMessage<T extends { type: string }>(
  child: Child,
  type: T['type'],
  timeoutMs: number,
  onOther: (message: { type: string; [key: string]: unknown }) => void = () => undefined,
): Promise<T> {
  return new Promise<T>((resolvePromise, reject) => {
    const proc = child.process;
    const cleanup = () => {
      clearTimeout(timer);
      proc.off('message', onMessage);
      proc.off('exit', onExit);
    };
    const onMessage = (raw: unknown) => {
      const message = raw as { type: string; message?: string; [key: string]: unknown };
      if (message?.type === type) {
        cleanup();
        resolvePromise(message as unknown as T);
      } else if (message?.type === 'error') {
        cleanup();
        reject(new ChildFailed(`${child.name}: ${message.message ?? 'failed'}\n${child.tail()}`));
      } else {
        onOther(message);
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      cleanup();
      reject(new ChildFailed(`${child.name} exited (${signal ?? `code ${code}`}) before "${type}"\n${child.tail()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new ChildFailed(`${child.name}: no "${type}" within ${Math.round(timeoutMs / 1000)} s\n${child.tail()}`));
    }, timeoutMs);
    proc.on('message', onMessage);
    proc.once('exit', onExit);
  });
}

export function send(child: Child, message: object): void {
  if (child.process.connected) child.process.send(message);
}
