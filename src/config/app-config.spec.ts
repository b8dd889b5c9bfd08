import { BlockList, isIP } from 'node:net';
import { ConfigError, loadConfig } from './app-config';

/** Builds a BlockList from CIDR strings, to ask what a network list admits rather than how it is spelled. */
function blockListOf(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address, prefix] = cidr.split('/');
    list.addSubnet(address, Number(prefix), isIP(address) === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

function admits(list: BlockList, address: string): boolean {
  return list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

/** The ConfigError loadConfig throws for `env`; fails the test when it does not throw one. */
function configErrorFor(env: Record<string, string>): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  return caught as ConfigError;
}

describe('loadConfig (SPEC 8: configuration only through environment variables, validated at boot)', () => {
  describe('defaults of an empty environment', () => {
    const config = loadConfig({});

    it('PORT defaults to 3000', () => {
      expect(config.app.port).toBe(3000);
    });

    it('DATABASE_URL defaults to null (embedded PostgreSQL under ./data)', () => {
      expect(config.database.url).toBeNull();
      expect(config.database.embeddedDir).toBe('./data');
    });

    it('METER_URL_TEMPLATE defaults to http://{address}:{port}/', () => {
      expect(config.polling.urlTemplate).toBe('http://{address}:{port}/');
    });

    it('POLL_INTERVAL_SECONDS defaults to 60 and POLL_TIMEOUT_MS to 5000', () => {
      expect(config.polling.intervalSeconds).toBe(60);
      expect(config.polling.timeoutMs).toBe(5000);
    });

    it('POLL_CONCURRENCY has a positive integer default', () => {
      expect(Number.isInteger(config.polling.concurrency)).toBe(true);
      expect(config.polling.concurrency).toBeGreaterThanOrEqual(1);
    });

    it('POLLING_ENABLED defaults to true', () => {
      expect(config.polling.enabled).toBe(true);
    });

    it('STATS_TIMEZONE defaults to UTC', () => {
      expect(config.stats.timeZone).toBe('UTC');
    });

    it('READINGS_RETENTION_DAYS defaults to keeping every reading; a number of days is taken as given', () => {
      expect(config.stats.retentionDays).toBeNull();
      expect(loadConfig({ READINGS_RETENTION_DAYS: '' }).stats.retentionDays).toBeNull();
      expect(loadConfig({ READINGS_RETENTION_DAYS: '400' }).stats.retentionDays).toBe(400);
    });

    it('METER_ALLOWED_NETWORKS defaults to loopback and the private ranges, not link-local', () => {
      const list = blockListOf(config.meters.allowedNetworks);
      for (const inside of ['127.0.0.1', '127.255.0.9', '10.1.2.3', '172.16.0.1', '172.31.255.254', '192.168.1.20', '::1', 'fd12:3456::1']) {
        expect({ inside, admitted: admits(list, inside) }).toEqual({ inside, admitted: true });
      }
      for (const outside of ['169.254.169.254', '169.254.0.1', '8.8.8.8', '172.32.0.1', '192.169.0.1', 'fe80::1', '2001:db8::1']) {
        expect({ outside, admitted: admits(list, outside) }).toEqual({ outside, admitted: false });
      }
      expect(config.meters.allowedNetworks).not.toContain('169.254.0.0/16');
    });

    it('treats empty and blank values as unset', () => {
      const blank = loadConfig({ PORT: '', POLL_INTERVAL_SECONDS: '   ', DATABASE_URL: '', POLLING_ENABLED: '' });
      expect(blank.app.port).toBe(3000);
      expect(blank.polling.intervalSeconds).toBe(60);
      expect(blank.database.url).toBeNull();
      expect(blank.polling.enabled).toBe(true);
    });
  });

  describe('valid values are taken', () => {
    it('reads every SPEC 8 variable', () => {
      const config = loadConfig({
        PORT: '8080',
        DATABASE_URL: 'postgres://meter:secret@db.internal:5433/meters',
        METER_URL_TEMPLATE: 'http://{address}:8001/{port}',
        POLL_INTERVAL_SECONDS: '30',
        POLL_TIMEOUT_MS: '2500',
        POLL_CONCURRENCY: '64',
        POLLING_ENABLED: 'false',
        METER_ALLOWED_NETWORKS: '10.0.0.0/8, ::1/128',
        STATS_TIMEZONE: 'Europe/Berlin',
      });
      expect(config.app.port).toBe(8080);
      expect(config.database.url).toBe('postgres://meter:secret@db.internal:5433/meters');
      expect(config.polling).toMatchObject({
        urlTemplate: 'http://{address}:8001/{port}',
        intervalSeconds: 30,
        timeoutMs: 2500,
        concurrency: 64,
        enabled: false,
      });
      expect(config.meters.allowedNetworks).toEqual(['10.0.0.0/8', '::1/128']);
      expect(config.stats.timeZone).toBe('Europe/Berlin');
    });

    it.each([
      ['true', true],
      ['TRUE', true],
      ['1', true],
      ['false', false],
      ['False', false],
      ['0', false],
    ])('POLLING_ENABLED=%s means %s', (value, expected) => {
      expect(loadConfig({ POLLING_ENABLED: value }).polling.enabled).toBe(expected);
    });

    it('accepts postgresql:// as well as postgres://', () => {
      expect(loadConfig({ DATABASE_URL: 'postgresql://u@localhost/db' }).database.url).toBe('postgresql://u@localhost/db');
    });
  });

  describe('a bad value refuses to start and names the variable', () => {
    it.each([
      ['PORT', { PORT: 'abc' }],
      ['PORT', { PORT: '70000' }],
      ['PORT', { PORT: '-1' }],
      ['PORT', { PORT: '80.5' }],
      ['POLL_INTERVAL_SECONDS', { POLL_INTERVAL_SECONDS: '0' }],
      ['POLL_INTERVAL_SECONDS', { POLL_INTERVAL_SECONDS: 'abc' }],
      ['POLL_TIMEOUT_MS', { POLL_INTERVAL_SECONDS: '5', POLL_TIMEOUT_MS: '5000' }],
      ['POLL_TIMEOUT_MS', { POLL_INTERVAL_SECONDS: '5', POLL_TIMEOUT_MS: '9000' }],
      ['POLL_TIMEOUT_MS', { POLL_TIMEOUT_MS: '60000' }],
      ['POLL_CONCURRENCY', { POLL_CONCURRENCY: '0' }],
      ['POLLING_ENABLED', { POLLING_ENABLED: 'maybe' }],
      ['METER_URL_TEMPLATE', { METER_URL_TEMPLATE: 'http://{address}/' }],
      ['METER_URL_TEMPLATE', { METER_URL_TEMPLATE: 'http://meter:{port}/' }],
      ['METER_URL_TEMPLATE', { METER_URL_TEMPLATE: 'ftp://{address}:{port}/' }],
      ['METER_ALLOWED_NETWORKS', { METER_ALLOWED_NETWORKS: '10.0.0.0/33' }],
      ['METER_ALLOWED_NETWORKS', { METER_ALLOWED_NETWORKS: '127.0.0.0/8,not-a-cidr' }],
      ['METER_ALLOWED_NETWORKS', { METER_ALLOWED_NETWORKS: '::1/129' }],
      ['METER_ALLOWED_NETWORKS', { METER_ALLOWED_NETWORKS: ' , ' }],
      ['STATS_TIMEZONE', { STATS_TIMEZONE: 'Mars/Base' }],
      ['READINGS_RETENTION_DAYS', { READINGS_RETENTION_DAYS: '0' }],
      ['READINGS_RETENTION_DAYS', { READINGS_RETENTION_DAYS: '30d' }],
      ['READINGS_RETENTION_DAYS', { READINGS_RETENTION_DAYS: '-5' }],
      ['DATABASE_URL', { DATABASE_URL: 'mysql://x' }],
      ['DATABASE_URL', { DATABASE_URL: 'not a url' }],
    ])('%s: %j', (variable, env) => {
      const error = configErrorFor(env);
      expect(error.message).toContain(variable);
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]).toContain(variable);
    });

    it('names every bad variable at once, not just the first', () => {
      const error = configErrorFor({
        PORT: 'abc',
        POLLING_ENABLED: 'maybe',
        STATS_TIMEZONE: 'Mars/Base',
        METER_ALLOWED_NETWORKS: '10.0.0.0/33',
        DATABASE_URL: 'mysql://x',
      });
      for (const variable of ['PORT', 'POLLING_ENABLED', 'STATS_TIMEZONE', 'METER_ALLOWED_NETWORKS', 'DATABASE_URL']) {
        expect(error.message).toContain(variable);
      }
      expect(error.problems).toHaveLength(5);
    });

    it('never echoes a password from DATABASE_URL', () => {
      for (const url of [
        'mysql://admin:Sup3rS3cretPw@db.internal/meters',
        'postgres://admin:Sup3rS3cretPw@/meters',
        'admin:Sup3rS3cretPw@db.internal:5432',
      ]) {
        const error = configErrorFor({ DATABASE_URL: url, PORT: 'abc' });
        expect(error.message).toContain('DATABASE_URL');
        expect(error.message).not.toContain('Sup3rS3cretPw');
        expect(error.problems.join('\n')).not.toContain('Sup3rS3cretPw');
      }
    });

    it('does not echo a valid DATABASE_URL when another variable is wrong', () => {
      const error = configErrorFor({ DATABASE_URL: 'postgres://admin:Sup3rS3cretPw@db.internal/meters', PORT: 'abc' });
      expect(error.message).toContain('PORT');
      expect(error.message).not.toContain('Sup3rS3cretPw');
    });
  });
  describe('access control and live-read limits (issue 5.6)', () => {
    it('has no API key by default (every request served), reads closed once a key is set, limits on', () => {
      const config = loadConfig({});
      expect(config.access).toEqual({ apiKey: null, readOpen: false });
      expect(config.liveReadLimits).toEqual({ perMeter: 12, perClient: 120, windowSeconds: 60 });
    });

    it('takes API_KEY, API_READ_OPEN and the limits', () => {
      const config = loadConfig({
        API_KEY: 'k3y-with-16-chars+',
        API_READ_OPEN: 'true',
        LIVE_READ_LIMIT_PER_METER: '0',
        LIVE_READ_LIMIT_PER_CLIENT: '30',
        LIVE_READ_LIMIT_WINDOW_SECONDS: '10',
      });
      expect(config.access).toEqual({ apiKey: 'k3y-with-16-chars+', readOpen: true });
      expect(config.liveReadLimits).toEqual({ perMeter: 0, perClient: 30, windowSeconds: 10 });
    });

    it('treats an empty API_KEY as no key', () => {
      expect(loadConfig({ API_KEY: '' }).access.apiKey).toBeNull();
    });

    it.each([
      ['too short', 'short-Secret1'],
      ['with a space', 'a secretkey spacedout'],
      ['with a non-ASCII character', 'sécret-sécret-sécret'],
    ])('refuses an API_KEY %s and never echoes it, not even in part', (_name, key) => {
      const error = configErrorFor({ API_KEY: key });
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]).toContain('API_KEY');
      for (const part of key.split(/\s+/).filter((word) => word.length >= 5)) {
        expect(error.message).not.toContain(part);
      }
    });

    it.each([
      ['API_READ_OPEN', { API_READ_OPEN: 'sometimes' }],
      ['LIVE_READ_LIMIT_PER_METER', { LIVE_READ_LIMIT_PER_METER: '-1' }],
      ['LIVE_READ_LIMIT_PER_CLIENT', { LIVE_READ_LIMIT_PER_CLIENT: 'many' }],
      ['LIVE_READ_LIMIT_WINDOW_SECONDS', { LIVE_READ_LIMIT_WINDOW_SECONDS: '0' }],
    ])('refuses a bad %s', (variable, env) => {
      const error = configErrorFor(env);
      expect(error.problems).toEqual([expect.stringContaining(variable)]);
    });
  });
  describe('LOG_LEVEL (issue 6.3)', () => {
    it('defaults to info', () => {
      expect(loadConfig({}).logging).toEqual({ level: 'info' });
    });

    it.each(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])('takes %s', (level) => {
      expect(loadConfig({ LOG_LEVEL: level }).logging.level).toBe(level);
    });

    it('takes a level in capitals as the same level', () => {
      expect(loadConfig({ LOG_LEVEL: 'WARN' }).logging.level).toBe('warn');
    });

    it.each(['verbose', 'loud', '3', 'warning'])('refuses LOG_LEVEL=%s, naming the levels it takes', (level) => {
      const error = configErrorFor({ LOG_LEVEL: level });
      expect(error.problems).toEqual([expect.stringContaining('LOG_LEVEL must be one of fatal, error, warn, info')]);
    });
  });
});
