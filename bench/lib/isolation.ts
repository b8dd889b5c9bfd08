/**
 * Runs a benchmark script again, as a child, with the open-file limit raised to the hard limit (a Node process
 * cannot raise its own) and, when possible, inside a private network namespace.
 *
 * Why a namespace: the meter range 9000-65000 contains the kernel's whole ephemeral range (32768-60999 here).
 * When every ephemeral port is held by a meter's listening socket, the kernel has no port left for an outgoing
 * connection and connect() fails with EADDRNOTAVAIL (measured: it skips ports held by listeners whatever the
 * address). In the shared namespace that breaks the poller itself, and every other program on the machine that
 * opens a TCP connection meanwhile (other engineers' tests), and their random listening ports take meter ports.
 * A private namespace (`unshare --net`, root only) has its own loopback and its own ephemeral range, which is
 * moved below the meter range there: the benchmark then neither sees nor disturbs anything else. Traffic stays
 * on 127.0.0.1, real TCP, real ports.
 */
import { spawn, spawnSync } from 'node:child_process';
import { ephemeralPortRange, openFileLimit, OpenFileLimit } from './machine';

const INNER = 'EM_BENCH_INNER';
const NETNS = 'EM_BENCH_NETNS';
const NETNS_WHY = 'EM_BENCH_NETNS_WHY';
const SOFT_BEFORE = 'EM_BENCH_SOFT_BEFORE';
const ULIMIT_FAILED = 'EM_BENCH_ULIMIT_FAILED';

/** The ephemeral range inside the private namespace: below the meters (9000+), the database and the API. */
export const PRIVATE_EPHEMERAL_RANGE: [number, number] = [1024, 8399];

export interface Isolation {
  netns: 'private' | 'shared';
  /** How the namespace was made, or why the shared one is used. */
  netnsNote: string;
  ephemeralRange: [number, number] | null;
  limit: OpenFileLimit;
  softBefore: number | null;
  /** `ulimit -n <hard>` was refused. */
  raiseRefused: boolean;
}

export function isInner(): boolean {
  return process.env[INNER] === '1';
}

export function currentIsolation(): Isolation {
  const softBefore = Number(process.env[SOFT_BEFORE]);
  return {
    netns: process.env[NETNS] === 'private' ? 'private' : 'shared',
    netnsNote: process.env[NETNS_WHY] ?? '',
    ephemeralRange: ephemeralPortRange(),
    limit: openFileLimit(),
    softBefore: Number.isFinite(softBefore) ? softBefore : null,
    raiseRefused: process.env[ULIMIT_FAILED] === '1',
  };
}

function probePrivateNamespace(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (unshare --net needs CAP_SYS_ADMIN)';
  const [low, high] = PRIVATE_EPHEMERAL_RANGE;
  const probe = spawnSync(
    'unshare',
    ['--net', 'sh', '-c', `ip link set lo up && echo "${low} ${high}" > /proc/sys/net/ipv4/ip_local_port_range`],
    { encoding: 'utf8', timeout: 10_000 },
  );
  if (probe.error) return `unshare not usable: ${probe.error.message}`;
  if (probe.status !== 0) return `unshare --net failed: ${(probe.stderr || '').trim() || `exit ${probe.status}`}`;
  return null;
}

const SCRIPT = `
if [ "$${NETNS}" = private ]; then
  ip link set lo up || exit 90
  echo "${PRIVATE_EPHEMERAL_RANGE[0]} ${PRIVATE_EPHEMERAL_RANGE[1]}" > /proc/sys/net/ipv4/ip_local_port_range || exit 91
fi
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
if [ "$(ulimit -n)" != "$hard" ]; then
  ulimit -n "$hard" 2>/dev/null || export ${ULIMIT_FAILED}=1
fi
exec "$@"
`;

/**
 * Starts this script again as the "inner" run and resolves with its exit code. `wantPrivate` false (or a reason
 * it cannot be had) keeps the shared namespace; the inner run prints which one it got and why.
 */
export async function relaunch(wantPrivate: boolean, whyNot: string | null): Promise<number> {
  let netns: 'private' | 'shared' = 'shared';
  let note = whyNot ?? '';
  if (wantPrivate) {
    const problem = probePrivateNamespace();
    if (problem === null) {
      netns = 'private';
      note = 'unshare --net: own loopback and ephemeral ports; nothing else on the machine is seen or disturbed';
    } else {
      note = problem;
    }
  }
  const node = [process.execPath, ...process.execArgv, process.argv[1], ...process.argv.slice(2)];
  const shell = ['sh', '-c', SCRIPT, 'sh', ...node];
  const command = netns === 'private' ? ['unshare', '--net', '--', ...shell] : shell;
  const child = spawn(command[0], command.slice(1), {
    stdio: 'inherit',
    env: {
      ...process.env,
      [INNER]: '1',
      [NETNS]: netns,
      [NETNS_WHY]: note,
      [SOFT_BEFORE]: String(openFileLimit().soft),
    },
  });
  // Ctrl-C reaches the whole process group; a plain kill of this process is passed on.
  const forward = (signal: NodeJS.Signals) => () => {
    if (child.exitCode === null) child.kill(signal);
  };
  process.on('SIGINT', forward('SIGINT'));
  process.on('SIGTERM', forward('SIGTERM'));
  return new Promise((resolve) => {
    child.on('error', (error) => {
      process.stderr.write(`cannot start the benchmark: ${error.message}\n`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      if (code === 90 || code === 91) process.stderr.write('could not set up the private network namespace\n');
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

/** The inner run ends itself when its launcher disappears (killed hard), so nothing lingers holding ports. */
export function exitWithLauncher(onOrphaned: () => void): void {
  const launcher = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== launcher) onOrphaned();
  }, 1000);
  timer.unref();
}
