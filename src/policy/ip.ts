// IP addresses and CIDRs for policy: strict validation and canonical text via
// ipaddr.js when loading manifests, and a small allocation-free parser for the
// evaluator (flows carry IP strings; CIDR checks need numbers).
//
// An address is four uint32 words: IPv4 uses words[0] only, IPv6 all four (big-endian).

import ipaddr from 'ipaddr.js';

export type Family = 4 | 6;

export interface Cidr {
  family: Family;
  /** Network address words, host bits cleared. */
  words: [number, number, number, number];
  prefix: number;
  /** Canonical "addr/prefix". */
  text: string;
}

/** Parses an IPv4 dotted quad in s[start, end); returns the uint32 or -1. No leading zeros. */
function parseV4(s: string, start: number, end: number): number {
  let value = 0, part = 0, digits = 0, dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0; digits = 0; dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1; // leading zero
      part = part * 10 + (c - 48);
      if (part > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + part;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const groups = new Uint32Array(8); // scratch, reused: the evaluator must not allocate

function parseV6(s: string, out: Uint32Array): boolean {
  const len = s.length;
  if (len < 2 || len > 45) return false;
  let i = 0, n = 0, gap = -1;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    gap = 0; i = 2;
  }
  while (i < len) {
    if (n >= 8) return false;
    let v = 0, digits = 0, j = i;
    for (; j < len; j++) {
      const h = hexValue(s.charCodeAt(j));
      if (h < 0) break;
      if (++digits > 4) return false;
      v = v * 16 + h;
    }
    if (j < len && s.charCodeAt(j) === 46) { // trailing dotted quad
      if (n > 6) return false;
      const v4 = parseV4(s, i, len);
      if (v4 < 0) return false;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      i = len;
      break;
    }
    if (digits === 0) return false;
    groups[n++] = v;
    i = j;
    if (i === len) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (i < len && s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = n; i++;
    } else if (i === len) {
      return false;
    }
  }
  if (gap < 0 ? n !== 8 : n > 7) return false;
  // Expand "::" into zero groups, writing words high to low.
  const zeros = 8 - n;
  for (let w = 0; w < 4; w++) {
    let word = 0;
    for (let h = 0; h < 2; h++) {
      const g = w * 2 + h;
      let val: number;
      if (gap < 0 || g < gap) val = groups[g];
      else if (g < gap + zeros) val = 0;
      else val = groups[g - zeros];
      word = word * 65536 + val;
    }
    out[w] = word;
  }
  return true;
}

/**
 * Parses an IP address into `out` without allocating; returns 4, 6, or 0 if `s` is not
 * an address. IPv4 leaves out[1..3] untouched.
 */
export function parseIPInto(s: string, out: Uint32Array): 0 | Family {
  if (s.indexOf(':') >= 0) return parseV6(s, out) ? 6 : 0;
  const v = parseV4(s, 0, s.length);
  if (v < 0) return 0;
  out[0] = v;
  return 4;
}

/**
 * Canonical text of an address (RFC 5952 for IPv6), or undefined if invalid. Uses the
 * evaluator's parser so manifests and flows can never disagree (ipaddr.js, for one,
 * reads the IPv4-compatible "::1.2.3.4" as IPv4-mapped "::ffff:1.2.3.4").
 */
export function canonicalIP(s: string): string | undefined {
  const words = new Uint32Array(4);
  const family = parseIPInto(s, words);
  return family === 0 ? undefined : formatWords(family, words);
}

export function familyOf(s: string): Family | 0 {
  return parseIPInto(s, new Uint32Array(4));
}

function maskWord(prefix: number, word: number): number {
  const bits = Math.max(0, Math.min(32, prefix - word * 32));
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** The mask words of a prefix length. */
export function maskWords(family: Family, prefix: number): [number, number, number, number] {
  if (family === 4) return [maskWord(prefix, 0), 0, 0, 0];
  return [maskWord(prefix, 0), maskWord(prefix, 1), maskWord(prefix, 2), maskWord(prefix, 3)];
}

/**
 * Parses "addr/prefix" (or a bare address when allowBare, meaning /32 or /128).
 * Host bits are cleared, as Calico does. Returns an error message on failure.
 */
export function parseCidr(text: string, allowBare = false): Cidr | string {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  if (slash < 0 && !allowBare) return `invalid CIDR ${JSON.stringify(text)}: missing /prefix`;
  const canon = canonicalIP(addr);
  if (canon === undefined) return `invalid CIDR ${JSON.stringify(text)}: bad address`;
  const words = new Uint32Array(4);
  const family = parseIPInto(canon, words) as Family;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) {
      return `invalid CIDR ${JSON.stringify(text)}: prefix must be 0-${max}`;
    }
    prefix = Number(p);
  }
  const mask = maskWords(family, prefix);
  const net: [number, number, number, number] = [0, 0, 0, 0];
  for (let w = 0; w < 4; w++) net[w] = (words[w] & mask[w]) >>> 0;
  return { family, words: net, prefix, text: `${formatWords(family, net)}/${prefix}` };
}

export function formatWords(family: Family, w: ArrayLike<number>): string {
  if (family === 4) {
    const v = w[0];
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const parts: number[] = [];
  for (let i = 0; i < 4; i++) parts.push(w[i] >>> 16, w[i] & 0xffff);
  return new ipaddr.IPv6(parts).toRFC5952String();
}

/** True if `inner` lies within `outer` (same family, longer-or-equal prefix). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  const mask = maskWords(outer.family, outer.prefix);
  for (let w = 0; w < 4; w++) if (((inner.words[w] & mask[w]) >>> 0) !== outer.words[w]) return false;
  return true;
}

/** True if the address (words) is inside the CIDR. */
export function cidrHas(c: Cidr, family: Family, words: ArrayLike<number>): boolean {
  if (c.family !== family) return false;
  const mask = maskWords(family, c.prefix);
  for (let w = 0; w < 4; w++) if (((words[w] & mask[w]) >>> 0) !== c.words[w]) return false;
  return true;
}
