import { DEFAULT_ALLOWED_NETWORKS } from '../config/app-config';
import { ALWAYS_DENIED, AddressPolicy, canonicalAddress, meterUrl } from './network';

const WIDE = ['0.0.0.0/0', '::/0'];

describe('canonicalAddress', () => {
  test.each([
    ['IPv4 as is', '127.0.0.1', '127.0.0.1'],
    ['IPv4 private', '10.1.2.3', '10.1.2.3'],
    ['IPv6 loopback', '::1', '::1'],
    ['IPv6 loopback spelled out', '0:0:0:0:0:0:0:1', '::1'],
    ['IPv6 with leading zeros in groups', '0000:0000:0000:0000:0000:0000:0000:0001', '::1'],
    ['IPv6 upper case', 'FD00:EC2::254', 'fd00:ec2::254'],
    ['IPv6 unspecified', '0:0:0:0:0:0:0:0', '::'],
    ['IPv6 unspecified short', '::', '::'],
    ['IPv6 trailing zeros', '1:0:0:0:0:0:0:0', '1::'],
    ['the longest zero run is compressed', '1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['the first of equal zero runs is compressed', '1:0:0:2:3:0:0:4', '1::2:3:0:0:4'],
    ['a single zero group is not compressed', '1:2:3:4:5:6:0:8', '1:2:3:4:5:6:0:8'],
    ['IPv4-mapped dotted', '::ffff:127.0.0.1', '127.0.0.1'],
    ['IPv4-mapped hex', '::ffff:7f00:1', '127.0.0.1'],
    ['IPv4-mapped metadata in hex', '::ffff:a9fe:a9fe', '169.254.169.254'],
    ['IPv4-mapped spelled out', '0:0:0:0:0:ffff:169.254.169.254', '169.254.169.254'],
    ['IPv4-mapped upper case', '::FFFF:A9FE:A9FE', '169.254.169.254'],
    ['IPv4-compatible stays IPv6', '::169.254.169.254', '::a9fe:a9fe'],
    ['NAT64 stays IPv6', '64:ff9b::169.254.169.254', '64:ff9b::a9fe:a9fe'],
  ])('%s: %s -> %s', (_description, input, canonical) => {
    expect(canonicalAddress(input)).toBe(canonical);
  });

  test.each([
    ['hostname', 'localhost'],
    ['hostname with dots', 'meter.local'],
    ['URL', 'http://127.0.0.1/'],
    ['with port', '127.0.0.1:80'],
    ['bracketed IPv6', '[::1]'],
    ['bracketed IPv6 with port', '[::1]:80'],
    ['zone id', 'fe80::1%eth0'],
    ['zone id, encoded', 'fe80::1%25eth0'],
    ['user info', 'user@127.0.0.1'],
    ['CIDR', '127.0.0.0/8'],
    ['short IPv4 (inet_aton would read 127.0.0.1)', '127.1'],
    ['decimal IPv4 (inet_aton would read 127.0.0.1)', '2130706433'],
    ['hex IPv4', '0x7f.0.0.1'],
    ['octal IPv4 (inet_aton would read 87.0.0.1)', '0127.0.0.1'],
    ['leading zero in the last octet', '127.0.0.01'],
    ['octet over 255', '256.0.0.1'],
    ['surrounding space', ' 127.0.0.1'],
    ['trailing space', '::1 '],
    ['trailing dot', '127.0.0.1.'],
    ['empty', ''],
    ['too many IPv6 groups', '1:2:3:4:5:6:7:8:9'],
    ['two :: in IPv6', '1::2::3'],
  ])('%s (%p) is not an address', (_description, input) => {
    expect(canonicalAddress(input)).toBeNull();
  });

  test('is idempotent: a canonical address is its own canonical form', () => {
    for (const input of ['::ffff:a9fe:a9fe', '0:0:0:0:0:0:0:1', 'FD00:EC2::254', '1:0:0:2:0:0:0:3', '64:ff9b::1.2.3.4']) {
      const once = canonicalAddress(input) as string;
      expect(canonicalAddress(once)).toBe(once);
    }
  });
});

describe('AddressPolicy', () => {
  const defaults = new AddressPolicy(DEFAULT_ALLOWED_NETWORKS);
  const wide = new AddressPolicy(WIDE);

  test.each([
    ['127.0.0.1', '127.0.0.1'],
    ['127.255.255.254', '127.255.255.254'],
    ['10.0.0.1', '10.0.0.1'],
    ['172.16.0.1', '172.16.0.1'],
    ['172.31.255.255', '172.31.255.255'],
    ['192.168.1.10', '192.168.1.10'],
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['fd12:3456::1', 'fd12:3456::1'],
    ['::ffff:192.168.1.10', '192.168.1.10'],
  ])('the default networks allow %s (as %s)', (input, canonical) => {
    expect(defaults.check(input)).toEqual({ allowed: true, address: canonical });
  });

  test.each(['8.8.8.8', '172.32.0.1', '192.169.0.1', '11.0.0.1', '2001:db8::1', '::ffff:8.8.8.8', '64:ff9b::10.0.0.1'])(
    'the default networks refuse %s as outside them, naming them',
    (input) => {
      const verdict = defaults.check(input);
      expect(verdict).toMatchObject({ allowed: false, reason: expect.stringContaining('outside the allowed meter networks') });
      expect(verdict.allowed || verdict.reason).toContain('127.0.0.0/8');
    },
  );

  // Never polled, however wide METER_ALLOWED_NETWORKS is.
  test.each([
    ['cloud metadata (AWS, GCP, Azure)', '169.254.169.254', '169.254.169.254'],
    ['link-local, low end', '169.254.0.0', '169.254.0.0'],
    ['link-local, high end', '169.254.255.255', '169.254.255.255'],
    ['AWS metadata over IPv6', 'fd00:ec2::254', 'fd00:ec2::254'],
    ['AWS metadata over IPv6, spelled out', 'fd00:0ec2:0000:0000:0000:0000:0000:0254', 'fd00:ec2::254'],
    ['IPv4-mapped metadata', '::ffff:169.254.169.254', '169.254.169.254'],
    ['IPv4-mapped metadata in hex', '::ffff:a9fe:a9fe', '169.254.169.254'],
    ['IPv4-mapped metadata spelled out', '0:0:0:0:0:ffff:169.254.169.254', '169.254.169.254'],
    ['IPv6 link-local', 'fe80::1', 'fe80::1'],
    ['IPv6 link-local, upper case', 'FE80::A9FE:A9FE', 'fe80::a9fe:a9fe'],
    ['IPv6 link-local, top of fe80::/10', 'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['IPv4 unspecified (connects to this host)', '0.0.0.0', '0.0.0.0'],
    ['IPv4 this network', '0.1.2.3', '0.1.2.3'],
    ['IPv4-mapped unspecified', '::ffff:0.0.0.0', '0.0.0.0'],
    ['IPv6 unspecified', '::', '::'],
    ['IPv6 unspecified spelled out', '0:0:0:0:0:0:0:0', '::'],
  ])('%s (%s) is refused as link-local or unspecified', (_description, input, canonical) => {
    for (const policy of [wide, defaults]) {
      const verdict = policy.check(input);
      expect(verdict).toEqual({ allowed: false, reason: `${canonical} is link-local or unspecified and is never polled` });
    }
  });

  test.each([
    ['NAT64 well-known prefix', '64:ff9b::169.254.169.254', '64:ff9b::a9fe:a9fe', '169.254.169.254'],
    ['NAT64 in hex', '64:ff9b::a9fe:a9fe', '64:ff9b::a9fe:a9fe', '169.254.169.254'],
    ['NAT64 unspecified', '64:ff9b::0.0.0.0', '64:ff9b::', '0.0.0.0'],
    ['IPv4-compatible (deprecated)', '::169.254.169.254', '::a9fe:a9fe', '169.254.169.254'],
    ['IPv4-translated (SIIT)', '::ffff:0:169.254.169.254', '::ffff:0:a9fe:a9fe', '169.254.169.254'],
    ['6to4', '2002:a9fe:a9fe::1', '2002:a9fe:a9fe::1', '169.254.169.254'],
    ['6to4 of 0.0.0.0', '2002::1', '2002::1', '0.0.0.0'],
  ])('%s carrying a never-polled IPv4 address (%s) is refused even with ::/0 allowed', (_d, input, canonical, inner) => {
    expect(wide.check(input)).toEqual({
      allowed: false,
      reason: `${canonical} carries ${inner}, which is link-local or unspecified and is never polled`,
    });
  });

  test.each([
    ['::1', '::1'],
    ['64:ff9b::10.0.0.1', '64:ff9b::a00:1'],
    ['2002:0a00:0001::1', '2002:a00:1::1'],
    ['::10.0.0.1', '::a00:1'],
    ['2001:db8::1', '2001:db8::1'],
    ['8.8.8.8', '8.8.8.8'],
    ['169.253.255.255', '169.253.255.255'],
    ['169.255.0.0', '169.255.0.0'],
    ['1.0.0.0', '1.0.0.0'],
    ['fe7f:ffff::1', 'fe7f:ffff::1'],
    ['fec0::1', 'fec0::1'],
    ['fd00:ec2::253', 'fd00:ec2::253'],
  ])('a wide allowance admits %s, which carries nothing never polled', (input, canonical) => {
    expect(wide.check(input)).toEqual({ allowed: true, address: canonical });
  });

  test('refuses what is not an IP literal, before any network check', () => {
    for (const input of ['localhost', '127.1', '[::1]', 'fe80::1%eth0', '127.0.0.1:80', '']) {
      expect(wide.check(input)).toEqual({
        allowed: false,
        reason: 'must be an IPv4 or IPv6 literal (no hostname, scheme, port, path or zone)',
      });
    }
  });

  test('an allowance naming a never-polled block does not admit it', () => {
    const policy = new AddressPolicy(['169.254.0.0/16', 'fe80::/10', '0.0.0.0/8', '64:ff9b::/96']);
    for (const input of ['169.254.169.254', 'fe80::1', '0.0.0.0', '64:ff9b::a9fe:a9fe']) {
      expect(policy.check(input)).toMatchObject({ allowed: false, reason: expect.stringContaining('link-local') });
    }
  });

  test('a narrow allowance refuses its neighbours', () => {
    const policy = new AddressPolicy(['127.0.0.1/32']);
    expect(policy.check('127.0.0.1')).toEqual({ allowed: true, address: '127.0.0.1' });
    expect(policy.check('::ffff:127.0.0.1')).toEqual({ allowed: true, address: '127.0.0.1' });
    expect(policy.check('127.0.0.2')).toMatchObject({ allowed: false, reason: expect.stringContaining('outside') });
    expect(policy.check('::1')).toMatchObject({ allowed: false, reason: expect.stringContaining('outside') });
  });

  test('an IPv6 allowance does not admit IPv4 addresses, mapped spellings included', () => {
    const policy = new AddressPolicy(['::/0']);
    expect(policy.check('::1')).toEqual({ allowed: true, address: '::1' });
    for (const input of ['10.0.0.1', '8.8.8.8', '::ffff:10.0.0.1']) {
      expect(policy.check(input)).toMatchObject({ allowed: false, reason: expect.stringContaining('outside') });
    }
  });

  test('an IPv4 allowance does not admit IPv6 addresses', () => {
    const policy = new AddressPolicy(['0.0.0.0/0']);
    expect(policy.check('8.8.8.8')).toEqual({ allowed: true, address: '8.8.8.8' });
    for (const input of ['::1', '2001:db8::1', '64:ff9b::808:808']) {
      expect(policy.check(input)).toMatchObject({ allowed: false, reason: expect.stringContaining('outside') });
    }
  });

  test('a block written in the IPv4-mapped form admits those IPv4 addresses', () => {
    const policy = new AddressPolicy(['::ffff:10.0.0.0/104', '::ffff:192.168.1.7/128']);
    expect(policy.check('10.9.8.7')).toEqual({ allowed: true, address: '10.9.8.7' });
    expect(policy.check('::ffff:10.9.8.7')).toEqual({ allowed: true, address: '10.9.8.7' });
    expect(policy.check('192.168.1.7')).toEqual({ allowed: true, address: '192.168.1.7' });
    expect(policy.check('192.168.1.8')).toMatchObject({ allowed: false });
    expect(policy.check('11.0.0.1')).toMatchObject({ allowed: false });
  });

  test('the never-polled blocks are link-local, unspecified and the IPv6 metadata address', () => {
    expect(ALWAYS_DENIED).toEqual(['169.254.0.0/16', '0.0.0.0/8', 'fe80::/10', '::/128', 'fd00:ec2::254/128']);
  });
});

describe('meterUrl', () => {
  const DEFAULT_TEMPLATE = 'http://{address}:{port}/';
  const EMULATOR_TEMPLATE = 'http://{address}:8001/{port}';

  test.each([
    [DEFAULT_TEMPLATE, '127.0.0.1', 9000, 'http://127.0.0.1:9000/'],
    [DEFAULT_TEMPLATE, '::1', 9000, 'http://[::1]:9000/'],
    [DEFAULT_TEMPLATE, 'fd12:3456::1', 1, 'http://[fd12:3456::1]:1/'],
    [EMULATOR_TEMPLATE, '127.0.0.1', 9000, 'http://127.0.0.1:8001/9000'],
    [EMULATOR_TEMPLATE, '::1', 65535, 'http://[::1]:8001/65535'],
    ['http://{address}:{port}/meters/{port}?at={address}', '::1', 9000, 'http://[::1]:9000/meters/9000?at=[::1]'],
  ])('%s with %s port %d is %s', (template, address, port, url) => {
    expect(meterUrl(template, address, port)).toBe(url);
  });

  test('the URL parses to the address and port it was made from', () => {
    const url = new URL(meterUrl(DEFAULT_TEMPLATE, 'fd00::8', 8080));
    expect(url.hostname).toBe('[fd00::8]');
    expect(url.port).toBe('8080');
    expect(url.pathname).toBe('/');
  });

  test('a template character such as $ in the replacement has no special meaning', () => {
    expect(meterUrl('http://x/{port}$&{address}', '127.0.0.1', 1)).toBe('http://x/1$&127.0.0.1');
  });
});
