// Subnet arithmetic for lease allocation, on bigints so IPv4 and IPv6 share one code path.
import ipaddr from 'ipaddr.js';
import type { Cidr, Family } from '../cidr.js';

const bits = (family: Family): number => (family === 4 ? 32 : 128);

export function toBig(bytes: readonly number[]): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/** The network `addr/prefix` (host bits of `addr` must be zero). */
export function cidrOf(family: Family, addr: bigint, prefix: number): Cidr {
  const n = bits(family) / 8;
  const bytes = new Array<number>(n);
  let v = addr;
  for (let i = n - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return { family, bytes, prefix, text: `${ipaddr.fromByteArray(bytes).toString()}/${prefix}` };
}

/** Number of addresses in a subnet of length `prefix`. */
export function blockSize(family: Family, prefix: number): bigint {
  return 1n << BigInt(bits(family) - prefix);
}

/** First address after the network (its end, exclusive). */
export function endOf(net: Cidr): bigint {
  return toBig(net.bytes) + blockSize(net.family, net.prefix);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  return toBig(a.bytes) < endOf(b) && toBig(b.bytes) < endOf(a);
}

/**
 * Free subnets of length `len` from `min` to `max` (both subnet addresses, inclusive), in order,
 * skipping any that overlap `used`; at most `limit` of them (Flannel collects up to 100 and picks
 * one at random, so hosts starting together rarely try the same one).
 */
export function freeSubnets(family: Family, min: bigint, max: bigint, len: number, used: readonly Cidr[], limit: number): Cidr[] {
  const step = blockSize(family, len);
  const taken = used.filter((u) => u.family === family).map((u) => [toBig(u.bytes), endOf(u)] as const).sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const out: Cidr[] = [];
  let t = 0;
  for (let a = min; a <= max && out.length < limit; a += step) {
    while (t < taken.length && taken[t][1] <= a) t++;
    // Jump past a used block that covers this candidate (a large reservation spans many subnets).
    if (t < taken.length && taken[t][0] < a + step) {
      const next = taken[t][1];
      a = next > a ? ((next - min + step - 1n) / step) * step + min - step : a;
      continue;
    }
    out.push(cidrOf(family, a, len));
  }
  return out;
}
