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
const ALWAYS_DENIED = ['169.254.0.0/16', '0.0.0.0/8', 'fe80::/10', '::/128', 'fd00:ec2::254/128'];

export type AddressVerdict = { allowed: true; address: string } | { allowed: false; reason: string };

/** The SSRF guard: decides whether the service may send a request to an address. */
export class AddressPolicy {
  private readonly allowed = new BlockList();
  private readonly denied = new BlockList();

  constructor(private readonly allowedCidrs: readonly string[]) {
    addSubnets(this.allowed, allowedCidrs);
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
    if (!this.allowed.check(address, family)) {
      return {
        allowed: false,
        reason: `${address} is outside the allowed meter networks (${this.allowedCidrs.join(', ')})`,
      };
    }
    return { allowed: true, address };
  }
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
  return template.replace('{address}', host).replace('{port}', String(port));
}
