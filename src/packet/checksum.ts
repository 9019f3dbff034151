// Internet checksum, RFC 1071 / RFC 1624, in plain TypeScript. This is the
// reference the native addon is tested against, and the implementation used
// off the hot path (ICMP error builders).

/** One's-complement sum of `len` bytes at `off`, added to `initial`, folded to 16 bits (not inverted). */
export function sum16(buf: Uint8Array, off: number, len: number, initial = 0): number {
  let acc = initial;
  const end = off + len;
  let i = off;
  for (; i + 1 < end; i += 2) acc += (buf[i] << 8) | buf[i + 1];
  if (i < end) acc += buf[i] << 8; // odd length: pad with a zero byte
  return fold(acc);
}

/** Folds a 32+-bit accumulator into 16 bits with end-around carry. */
export function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}

/** The checksum field value for data whose folded sum is `s`. */
export function finish(s: number): number {
  return ~s & 0xffff;
}

/** RFC 1624 eqn. 3: new checksum after a 16-bit field changes from `oldWord` to `newWord`. */
export function incrementalUpdate(checksum: number, oldWord: number, newWord: number): number {
  return ~fold((~checksum & 0xffff) + (~oldWord & 0xffff) + newWord) & 0xffff;
}

/** Checksum of the IPv4 header at `off` (its checksum field treated as zero). */
export function ipv4HeaderChecksum(buf: Uint8Array, off: number): number {
  const ihl = (buf[off] & 0x0f) << 2;
  return finish(fold(sum16(buf, off, 10) + sum16(buf, off + 12, ihl - 12)));
}

/**
 * Checksum of a TCP/UDP/ICMPv6 segment of `len` bytes at `l4off`, including the
 * pseudo-header of the IP packet at `ipOff` (IPv4 or IPv6, from the version nibble).
 * The segment's own checksum field at `l4off + csumOff` is treated as zero.
 */
export function l4Checksum(buf: Uint8Array, ipOff: number, l4off: number, len: number, proto: number, csumOff: number): number {
  let acc = pseudoHeaderSum(buf, ipOff, len, proto);
  // csumOff is even, so skipping the field keeps the 16-bit word alignment.
  acc += sum16(buf, l4off, csumOff) + sum16(buf, l4off + csumOff + 2, len - csumOff - 2);
  return finish(fold(acc));
}

/** Folded sum of the IPv4/IPv6 pseudo-header for an upper-layer length and protocol. */
export function pseudoHeaderSum(buf: Uint8Array, ipOff: number, len: number, proto: number): number {
  const v6 = buf[ipOff] >> 4 === 6;
  const addrs = v6 ? sum16(buf, ipOff + 8, 32) : sum16(buf, ipOff + 12, 8);
  return fold(addrs + proto + (len & 0xffff) + Math.floor(len / 0x10000));
}
