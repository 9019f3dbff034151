// Strict address and CIDR parsing for configuration (not for packets: the data path works on
// uint32/byte views). ipaddr.js accepts legacy IPv4 forms such as "10.1" or "0x0a.0.0.1"; a config
// file must not, so IPv4 text has to be four decimal parts.
import ipaddr from 'ipaddr.js';

export type Family = 4 | 6;

export interface Cidr {
  family: Family;
  /** Network address bytes (4 or 16). */
  bytes: number[];
  prefix: number;
  /** Canonical text: IPv4 dotted quad or RFC 5952 IPv6, then `/prefix`. */
  text: string;
}

export interface Ip {
  family: Family;
  bytes: number[];
  text: string;
}

/** Parses an IP address of the given family; null when it is not one. */
export function parseIp(text: string, family: Family): Ip | null {
  if (family === 4) {
    if (!ipaddr.IPv4.isValidFourPartDecimal(text)) return null;
    const a = ipaddr.IPv4.parse(text);
    return { family, bytes: a.toByteArray(), text: a.toString() };
  }
  if (!ipaddr.IPv6.isValid(text) || text.includes('%')) return null;
  const a = ipaddr.IPv6.parse(text);
  return { family, bytes: a.toByteArray(), text: a.toString() };
}

/** Parses any IP address, IPv4 tried first. */
export function parseAnyIp(text: string): Ip | null {
  return parseIp(text, 4) ?? parseIp(text, 6);
}

/**
 * Parses `addr/prefix` of one family. Returns an error message (without the field path) when the
 * text is not a CIDR or has host bits set, so a typo such as 10.244.1.0/16 is not silently widened.
 */
export function parseCidr(text: string, family: Family): Cidr | string {
  const what = family === 4 ? 'an IPv4 CIDR (like 10.244.0.0/16)' : 'an IPv6 CIDR (like fd00:10:244::/56)';
  const slash = text.indexOf('/');
  if (slash < 0) return `${JSON.stringify(text)} is not ${what}: missing /prefix`;
  const ip = parseIp(text.slice(0, slash), family);
  const prefixText = text.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (ip === null || !/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    return `${JSON.stringify(text)} is not ${what}`;
  }
  const prefix = Number(prefixText);
  const bytes = maskBytes(ip.bytes, prefix);
  const net: Cidr = { family, bytes, prefix, text: `${bytesToText(bytes)}/${prefix}` };
  if (!sameBytes(bytes, ip.bytes)) {
    return `${text} has host bits set (the network is ${net.text})`;
  }
  return net;
}

/** True when `inner` (an address or a network) lies inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr | Ip): boolean {
  if (outer.family !== inner.family) return false;
  if ('prefix' in inner && inner.prefix < outer.prefix) return false;
  return sameBytes(maskBytes(inner.bytes, outer.prefix), outer.bytes);
}

/** The last address of an IPv4 network (its broadcast address). */
export function lastAddress(net: Cidr): Ip {
  const bytes = net.bytes.slice();
  for (let bit = net.prefix; bit < bytes.length * 8; bit++) bytes[bit >> 3] |= 0x80 >> (bit & 7);
  return { family: net.family, bytes, text: bytesToText(bytes) };
}

/** The address at `offset` inside `net` (offset 0 is the network address). */
export function addressAt(net: Cidr, offset: number): Ip {
  const bytes = net.bytes.slice();
  let carry = offset;
  for (let i = bytes.length - 1; i >= 0 && carry > 0; i--) {
    const v = bytes[i] + (carry % 256);
    carry = Math.floor(carry / 256) + (v > 255 ? 1 : 0);
    bytes[i] = v & 0xff;
  }
  const ip: Ip = { family: net.family, bytes, text: bytesToText(bytes) };
  if (!cidrContains(net, ip)) throw new RangeError(`offset ${offset} is outside ${net.text}`);
  return ip;
}

/** Number of addresses in the network, capped at 2^53 for large IPv6 prefixes. */
export function networkSize(net: Cidr): number {
  const bits = net.bytes.length * 8 - net.prefix;
  return bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** bits;
}

export function sameIp(a: Ip | Cidr, b: Ip | Cidr): boolean {
  return a.family === b.family && sameBytes(a.bytes, b.bytes);
}

function maskBytes(bytes: number[], prefix: number): number[] {
  return bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
}

function sameBytes(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function bytesToText(bytes: number[]): string {
  return ipaddr.fromByteArray(bytes).toString();
}
