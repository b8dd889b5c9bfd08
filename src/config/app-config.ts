import { BlockList, isIP } from 'node:net';
import { isValidTimeZone } from '../readings/period';

/** Every setting of the service, validated once at boot. Nothing else reads `process.env`. */
export interface AppConfig {
  app: { port: number; bodyLimitBytes: number; bulkBodyLimitBytes: number };
  database: { url: string | null; embeddedDir: string; embeddedPort: number };
  polling: {
    enabled: boolean;
    intervalSeconds: number;
    timeoutMs: number;
    concurrency: number;
    urlTemplate: string;
    writeBatchSize: number;
    maxBufferedResults: number;
    maxKeptAlive: number;
    schedule: 'spread' | 'burst';
    shutdownGraceMs: number;
  };
  meters: { allowedNetworks: string[] };
  /** retentionDays: raw readings older than this many days are dropped, by whole months; null keeps all. */
  stats: { timeZone: string; retentionDays: number | null };
  access: {
    /** null: no key, every request is served (the default, for a trusted network). */
    apiKey: string | null;
    /** With a key set: whether read-only endpoints answer without it. */
    readOpen: boolean;
  };
  /** Live reads (GET /meters/{id}/data without dates) per window; 0 means unlimited. */
  liveReadLimits: { perMeter: number; perClient: number; windowSeconds: number };
  /** JSON log lines to stdout at this level and above. */
  logging: { level: LogLevel };
}

/** pino's levels, most severe first; `silent` logs nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Admits loopback and the private ranges; link-local is left out on purpose (cloud metadata lives there). */
export const DEFAULT_ALLOWED_NETWORKS = [
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '::1/128',
  'fc00::/7',
];

export const DEFAULT_URL_TEMPLATE = 'http://{address}:{port}/';

/** Short keys can be guessed; the key travels in a header, so visible ASCII only. */
export const API_KEY_MIN_LENGTH = 16;

type Env = Record<string, string | undefined>;

/** Reads and validates the environment; throws one ConfigError naming every bad variable. */
export function loadConfig(env: Env): AppConfig {
  const problems: string[] = [];
  const read = new EnvReader(env, problems);

  const intervalSeconds = read.integer('POLL_INTERVAL_SECONDS', 60, 1, 86_400);
  const timeoutMs = read.integer('POLL_TIMEOUT_MS', 5000, 50, 600_000);
  if (timeoutMs >= intervalSeconds * 1000) {
    problems.push(
      `POLL_TIMEOUT_MS (${timeoutMs}) must be shorter than POLL_INTERVAL_SECONDS (${intervalSeconds} s)`,
    );
  }

  const config: AppConfig = {
    app: {
      port: read.integer('PORT', 3000, 0, 65_535),
      bodyLimitBytes: read.integer('HTTP_BODY_LIMIT_BYTES', 1024 * 1024, 1024, 256 * 1024 * 1024),
      bulkBodyLimitBytes: read.integer('HTTP_BULK_BODY_LIMIT_BYTES', 32 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    },
    database: {
      url: read.databaseUrl('DATABASE_URL'),
      embeddedDir: read.string('EMBEDDED_PG_DIR', './data'),
      embeddedPort: read.integer('EMBEDDED_PG_PORT', 54_329, 1, 65_535),
    },
    polling: {
      enabled: read.boolean('POLLING_ENABLED', true),
      intervalSeconds,
      timeoutMs,
      // 256 in flight kept 5,000 loopback meters at full speed on 2 cores (FINDINGS); more only adds queueing.
      concurrency: read.integer('POLL_CONCURRENCY', 256, 1, 10_000),
      urlTemplate: read.urlTemplate('METER_URL_TEMPLATE'),
      writeBatchSize: read.integer('POLL_WRITE_BATCH_SIZE', 5000, 1, 100_000),
      // Ten minutes of the whole seed network (56,001 meters a minute) survive a database outage.
      maxBufferedResults: read.integer('POLL_BUFFER_MAX_RESULTS', 560_010, 1000, 100_000_000),
      // One socket per kept-alive meter; the hard open-file limit here is 20,000 and the API needs some too.
      maxKeptAlive: read.integer('POLL_MAX_KEPT_ALIVE', 15_000, 0, 1_000_000),
      schedule: read.choice('POLL_SCHEDULE', ['spread', 'burst'] as const, 'spread'),
      shutdownGraceMs: read.integer('SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
    },
    meters: { allowedNetworks: read.networks('METER_ALLOWED_NETWORKS') },
    stats: {
      timeZone: read.timeZone('STATS_TIMEZONE', 'UTC'),
      retentionDays: read.optionalInteger('READINGS_RETENTION_DAYS', 1, 365_000),
    },
    access: {
      apiKey: read.secret('API_KEY', API_KEY_MIN_LENGTH),
      readOpen: read.boolean('API_READ_OPEN', false),
    },
    liveReadLimits: {
      // A meter is polled once a minute; a dozen extra reads a minute is plenty for people and never hammers it.
      perMeter: read.integer('LIVE_READ_LIMIT_PER_METER', 12, 0, 1_000_000),
      perClient: read.integer('LIVE_READ_LIMIT_PER_CLIENT', 120, 0, 1_000_000),
      windowSeconds: read.integer('LIVE_READ_LIMIT_WINDOW_SECONDS', 60, 1, 86_400),
    },
    logging: { level: read.choice('LOG_LEVEL', LOG_LEVELS, 'info', true) },
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

class EnvReader {
  constructor(
    private readonly env: Env,
    private readonly problems: string[],
  ) {}

  private raw(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
      return fallback;
    }
    return Number(value);
  }

  /** An integer from min to max, or null when the variable is unset. */
  optionalInteger(name: string, min: number, max: number): number | null {
    return this.raw(name) === undefined ? null : this.integer(name, min, min, max);
  }

  choice<T extends string>(name: string, choices: readonly T[], fallback: T, anyCase = false): T {
    const value = anyCase ? this.raw(name)?.toLowerCase() : this.raw(name);
    if (value === undefined) return fallback;
    if (!(choices as readonly string[]).includes(value)) {
      this.problems.push(`${name} must be one of ${choices.join(', ')}, got "${value}"`);
      return fallback;
    }
    return value as T;
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (['true', '1', 'yes', 'on'].includes(value)) return true;
    if (['false', '0', 'no', 'off'].includes(value)) return false;
    this.problems.push(`${name} must be true or false, got "${value}"`);
    return fallback;
  }

  /** A secret: checked, never echoed (not even in part) in a message. */
  secret(name: string, minLength: number): string | null {
    const value = this.raw(name);
    if (value === undefined) return null;
    if (value.length < minLength || !/^[\x21-\x7e]+$/.test(value)) {
      this.problems.push(
        `${name} must be at least ${minLength} visible ASCII characters with no spaces (the value is not shown)`,
      );
      return null;
    }
    return value;
  }

  databaseUrl(name: string): string | null {
    const value = this.raw(name);
    if (value === undefined) return null;
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (!url || !['postgres:', 'postgresql:'].includes(url.protocol) || url.hostname === '') {
      // The value may hold a password: never echo it.
      this.problems.push(`${name} must look like postgres://user:pass@host:port/db`);
      return null;
    }
    return value;
  }

  urlTemplate(name: string): string {
    const value = this.raw(name) ?? DEFAULT_URL_TEMPLATE;
    const sample = value.replace('{address}', '127.0.0.1').replace('{port}', '9000');
    let ok = value.includes('{address}') && value.includes('{port}');
    try {
      ok = ok && new URL(sample).protocol === 'http:';
    } catch {
      ok = false;
    }
    if (!ok) {
      this.problems.push(
        `${name} must be an http:// URL containing {address} and {port}, got "${value}"`,
      );
      return DEFAULT_URL_TEMPLATE;
    }
    return value;
  }

  networks(name: string): string[] {
    const value = this.raw(name);
    if (value === undefined) return DEFAULT_ALLOWED_NETWORKS;
    const cidrs = value.split(',').map((part) => part.trim()).filter(Boolean);
    const bad = cidrs.filter((cidr) => !isCidr(cidr));
    if (cidrs.length === 0 || bad.length > 0) {
      this.problems.push(
        `${name} must be a comma-separated list of CIDR blocks (e.g. 10.0.0.0/8,::1/128), bad: "${bad.join(', ') || value}"`,
      );
      return DEFAULT_ALLOWED_NETWORKS;
    }
    return cidrs;
  }

  timeZone(name: string, fallback: string): string {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!isValidTimeZone(value)) {
      this.problems.push(`${name} must be an IANA time zone name such as Europe/Berlin, got "${value}"`);
      return fallback;
    }
    return value;
  }
}

export function isCidr(cidr: string): boolean {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  if (!match) return false;
  const family = isIP(match[1]);
  const prefix = Number(match[2]);
  if (family === 0 || prefix > (family === 4 ? 32 : 128)) return false;
  try {
    new BlockList().addSubnet(match[1], prefix, family === 4 ? 'ipv4' : 'ipv6');
    return true;
  } catch {
    return false;
  }
}
