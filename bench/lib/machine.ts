/**
 * What the machine is and what a process costs, read from /proc (Linux). Every reader returns null or a fallback
 * instead of throwing: the figures are context for a benchmark, never a reason to abort it.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { cpus, release } from 'node:os';

export interface OpenFileLimit {
  soft: number;
  hard: number;
}

export function openFileLimit(): OpenFileLimit {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const [soft, hard] = (line ?? '').slice('Max open files'.length).trim().split(/\s+/);
    const parse = (field: string | undefined): number =>
      field === undefined || field === 'unlimited' ? Number.POSITIVE_INFINITY : Number(field);
    return { soft: parse(soft), hard: parse(hard) };
  } catch {
    return { soft: Number.POSITIVE_INFINITY, hard: Number.POSITIVE_INFINITY };
  }
}

/** "7.41 5.42 3.12" (1, 5 and 15 minutes), or "?" */
export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return '?';
  }
}

export function oneMinuteLoad(): number {
  return Number(loadAverage().split(' ')[0]);
}

export function ephemeralPortRange(): [number, number] | null {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return Number.isInteger(low) && Number.isInteger(high) ? [low, high] : null;
  } catch {
    return null;
  }
}

export function coreCount(): number {
  return cpus().length;
}

export function kernel(): string {
  return release();
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const value = Number(out.stdout?.trim());
    clockTicks = Number.isInteger(value) && value > 0 ? value : 100;
  }
  return clockTicks;
}

/** User + system CPU time of a live process in ms (its own threads; children that exited are not included). */
export function processCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name in parentheses may contain spaces; fields are counted after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / ticksPerSecond();
  } catch {
    return null;
  }
}

export function totalCpuMs(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) total += processCpuMs(pid) ?? 0;
  return total;
}

/** Processes working in `dir`: PostgreSQL's postmaster and every backend run with the data directory as cwd. */
export function pidsWorkingIn(dir: string): number[] {
  let wanted: string;
  try {
    wanted = realpathSync(dir);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (realpathSync(`/proc/${name}/cwd`) === wanted) pids.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** The network namespace of this process, e.g. "net:[4026532231]" (informative only). */
export function networkNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/net');
  } catch {
    return '?';
  }
}
