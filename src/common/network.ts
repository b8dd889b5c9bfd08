import { BlockList, isIP } from 'node:net';

/**
 * Canonical text of an IP literal, so that `::1` and `0:0:0:0:0:0:0:1` are one address for uniqueness and for
 * the network guard. IPv4-mapped IPv6 becomes plain IPv4. Anything else (hostnames, zone ids, ports) is null.
 */
export function canonicalAddress(input: string): string | null {
  if (input.includes('%')) return null;
  const family = isIP(input);
  if (family === 4) return input;
  if (family !== 6) return null;
  const groups = expandIPv6(input.toLowerCase());
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (mapped) return [groups[6] >> 8, groups[6] & 255, groups[7] >> 8, groups[7] & 255].join('.');
  return compressIPv6(groups);
}

function expandIPv6(address: string): number[] {
  let text = address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1].split('.').map(Number);
    text = text.slice(0, -dotted[1].length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const parse = (part: string | undefined) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const left = parse(head);
  const right = parse(tail);
  const zeros = tail === undefined ? [] : new Array<number>(8 - left.length - right.length).fill(0);
  return [...left, ...zeros, ...right];
}

/** RFC 5952: the longest run of two or more zero groups becomes `::` (the first such run on a tie). */
function compressIPv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** Blocks that are never meters, whatever METER_ALLOWED_NETWORKS says: link-local (cloud metadata), unspecified. */
export const ALWAYS_DENIED = ['169.254.0.0/16', '0.0.0.0/8', 'fe80::/10', '::/128', 'fd00:ec2::254/128'];

export type AddressVerdict = { allowed: true; address: string } | { allowed: false; reason: string };

/**
 * The SSRF guard: decides whether the service may send a request to an address.
 *
 * Each family is checked against its own blocks. Node's BlockList would also match an IPv4 address against IPv6
 * blocks through its mapped form, so `::/0` would quietly admit every IPv4 address; here IPv4 is admitted only by
 * IPv4 blocks, or by blocks written in the mapped form (`::ffff:10.0.0.0/104` is 10.0.0.0/8).
 */
export class AddressPolicy {
  private readonly allowedV4 = new BlockList();
  private readonly allowedV6 = new BlockList();
  private readonly denied = new BlockList();

  constructor(private readonly allowedCidrs: readonly string[]) {
    for (const cidr of allowedCidrs) {
      const [network, prefixText] = cidr.split('/');
      const prefix = Number(prefixText);
      const mapped = isIP(network) === 6 ? canonicalAddress(network) : null;
      if (isIP(network) === 4) this.allowedV4.addSubnet(network, prefix, 'ipv4');
      else if (mapped !== null && isIP(mapped) === 4 && prefix >= 96) this.allowedV4.addSubnet(mapped, prefix - 96, 'ipv4');
      else this.allowedV6.addSubnet(network, prefix, 'ipv6');
    }
    addSubnets(this.denied, ALWAYS_DENIED);
  }

  check(input: string): AddressVerdict {
    const address = canonicalAddress(input);
    if (address === null) {
      return { allowed: false, reason: 'must be an IPv4 or IPv6 literal (no hostname, scheme, port, path or zone)' };
    }
    const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    if (this.denied.check(address, family)) {
      return { allowed: false, reason: `${address} is link-local or unspecified and is never polled` };
    }
    const embedded = family === 'ipv6' ? embeddedIPv4(expandIPv6(address)) : null;
    if (embedded !== null && this.denied.check(embedded, 'ipv4')) {
      return {
        allowed: false,
        reason: `${address} carries ${embedded}, which is link-local or unspecified and is never polled`,
      };
    }
    const allowed = family === 'ipv4' ? this.allowedV4 : this.allowedV6;
    if (!allowed.check(address, family)) {
      return {
        allowed: false,
        reason: `${address} is outside the allowed meter networks (${this.allowedCidrs.join(', ')})`,
      };
    }
    return { allowed: true, address };
  }
}

/**
 * The IPv4 address inside an IPv6 form that a translator or tunnel delivers to IPv4: NAT64 (64:ff9b::/96, RFC 6052),
 * IPv4-translated (::ffff:0:a.b.c.d, SIIT), IPv4-compatible (::a.b.c.d, deprecated; :: and ::1 excepted) and 6to4
 * (2002:AABB:CCDD::/48). On a network with NAT64, 64:ff9b::a9fe:a9fe reaches 169.254.169.254; a wide IPv6 allowance
 * (::/0) must not let the metadata service in through that door.
 */
function embeddedIPv4(groups: readonly number[]): string | null {
  const dotted = (high: number, low: number) => [high >> 8, high & 255, low >> 8, low & 255].join('.');
  const zeroUpTo = (end: number) => groups.slice(0, end).every((g) => g === 0);
  if (groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((g) => g === 0)) {
    return dotted(groups[6], groups[7]);
  }
  if (zeroUpTo(4) && groups[4] === 0xffff && groups[5] === 0) return dotted(groups[6], groups[7]);
  if (zeroUpTo(6) && !(groups[6] === 0 && groups[7] <= 1)) return dotted(groups[6], groups[7]);
  if (groups[0] === 0x2002) return dotted(groups[1], groups[2]);
  return null;
}

function addSubnets(list: BlockList, cidrs: readonly string[]): void {
  for (const cidr of cidrs) {
    const [network, prefix] = cidr.split('/');
    list.addSubnet(network, Number(prefix), isIP(network) === 4 ? 'ipv4' : 'ipv6');
  }
}

/** The URL a meter is read at, from METER_URL_TEMPLATE; IPv6 literals are bracketed. */
export function meterUrl(template: string, address: string, port: number): string {
  const host = address.includes(':') ? `[${address}]` : address;
  // Replacer functions: a replacement string would give `$&`-style patterns a meaning.
  return template.replaceAll('{address}', () => host).replaceAll('{port}', () => String(port));
}
