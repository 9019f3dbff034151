// ICMP / ICMPv6 error builders: the dataplane's answers to packets it cannot
// deliver (no route, policy reject, too big for the tunnel, TTL expired).
//
// Each builder writes a complete IP packet into a caller-provided scratch buffer
// at `outOff` and returns its length, or 0 when no error may be sent:
//   RFC 1122 3.2.2 / RFC 4443 2.4(e): never about an ICMP error (or redirect),
//   a non-first fragment, a source that is not one unicast host (0.0.0.0, ::,
//   loopback, multicast, broadcast, class E), or a multicast/broadcast
//   destination (except ICMPv6 Packet Too Big, which RFC 4443 allows);
//   also 0 for a malformed invoking packet or an output buffer too small.
// Quote: IPv4 = invoking header + 8 bytes (RFC 792); IPv6 = as much of the
// invoking packet as keeps the error within the IPv6 minimum MTU of 1280.
//
// The output may overlap the invoking packet (e.g. built in place 28 / 48 bytes
// in front of it): everything needed is read before the quote is copied, and the
// copy is overlap-safe. Not a per-packet path: ICMP errors are rare, and the
// TS checksum reference is used.

import { finish, l4Checksum, sum16 } from './checksum.js';
import { ICMP_HEADER, Icmp4Type, Icmp6Type, Icmp4Unreach, isIcmp4Error, isIcmp6Error } from './icmp.js';
import { IPV4_MIN_HEADER, Ipv4Fields, Ipv4View, encodeIpv4, isIpv4Multicast, isIpv4NonUnicast } from './ipv4.js';
import { IPV6_HEADER, Ipv6View, isIpv6MulticastWord0 } from './ipv6.js';
import { IpProto } from './proto.js';

/** IPv6 minimum link MTU: an ICMPv6 error never exceeds it (RFC 4443 2.4(c)). */
export const IPV6_MIN_MTU = 1280;
/** TTL / hop limit of the errors we originate. */
export const ICMP_ERROR_TTL = 64;
/** IPv4 TOS of the errors: precedence "internetwork control", as Linux sends. */
const ICMP_ERROR_TOS = 0xc0;

const v4 = new Ipv4View();
const v6 = new Ipv6View();
const f4 = new Ipv4Fields();

/** ICMPv4 Destination Unreachable (type 3), e.g. code Icmp4Unreach.Net / Host / AdminProhibited. */
export function icmp4DestUnreachable(out: Buffer, outOff: number, pkt: Buffer, pktOff: number, pktLen: number,
  code: number, router: number): number {
  return buildIcmp4(out, outOff, pkt, pktOff, pktLen, Icmp4Type.DestUnreachable, code, 0, router);
}

/** ICMPv4 "fragmentation needed and DF set" (type 3 code 4) with the next-hop MTU (RFC 1191). */
export function icmp4FragNeeded(out: Buffer, outOff: number, pkt: Buffer, pktOff: number, pktLen: number,
  mtu: number, router: number): number {
  return buildIcmp4(out, outOff, pkt, pktOff, pktLen, Icmp4Type.DestUnreachable, Icmp4Unreach.FragNeeded, mtu & 0xffff, router);
}

/** ICMPv4 Time Exceeded (type 11); code 0 = TTL exceeded in transit. */
export function icmp4TimeExceeded(out: Buffer, outOff: number, pkt: Buffer, pktOff: number, pktLen: number,
  router: number, code = 0): number {
  return buildIcmp4(out, outOff, pkt, pktOff, pktLen, Icmp4Type.TimeExceeded, code, 0, router);
}

/** ICMPv6 Destination Unreachable (type 1), e.g. code Icmp6Unreach.NoRoute / AdminProhibited. */
export function icmp6DestUnreachable(out: Buffer, outOff: number, pkt: Buffer, pktOff: number, pktLen: number,
  code: number, router: Buffer, routerOff = 0): number {
  return buildIcmp6(out, outOff, pkt, pktOff, pktLen, Icmp6Type.DestUnreachable, code, 0, router, routerOff);
}

/** ICMPv6 Packet Too Big (type 2) carrying `mtu`. */
export function icmp6PacketTooBig(out: Buffer, outOff: number, pkt: Buffer, pktOff: number, pktLen: number,
  mtu: number, router: Buffer, routerOff = 0): number {
  return buildIcmp6(out, outOff, pkt, pktOff, pktLen, Icmp6Type.PacketTooBig, 0, mtu, router, routerOff);
}

/** ICMPv6 Time Exceeded (type 3); code 0 = hop limit exceeded in transit. */
export function icmp6TimeExceeded(out: Buffer, outOff: number, pkt: Buffer, pktOff: number, pktLen: number,
  router: Buffer, routerOff = 0, code = 0): number {
  return buildIcmp6(out, outOff, pkt, pktOff, pktLen, Icmp6Type.TimeExceeded, code, 0, router, routerOff);
}

/** `rest` is the second 32-bit word of the ICMP header (unused / MTU). */
function buildIcmp4(out: Buffer, outOff: number, pkt: Buffer, pktOff: number, pktLen: number,
  type: number, code: number, rest: number, router: number): number {
  if (v4.reset(pkt, pktOff).validate(pktLen) !== 0) return 0;
  if (v4.isNonFirstFragment()) return 0;
  const src = v4.src(), dst = v4.dst();
  if (isIpv4NonUnicast(src) || isIpv4Multicast(dst) || dst === -1 /* 255.255.255.255 */) return 0;
  const hl = v4.headerLength(), total = v4.totalLength();
  if (v4.protocol() === IpProto.ICMP) {
    if (total <= hl) return 0; // cannot tell whether it is an error: stay silent
    if (isIcmp4Error(pkt[pktOff + hl])) return 0;
  }
  const quote = Math.min(total, hl + 8);
  const len = IPV4_MIN_HEADER + ICMP_HEADER + quote;
  if (outOff < 0 || outOff + len > out.length) return 0;

  const icmp = outOff + IPV4_MIN_HEADER;
  copyBytes(pkt, pktOff, out, icmp + ICMP_HEADER, quote);
  out[icmp] = type;
  out[icmp + 1] = code;
  out.writeUInt16BE(0, icmp + 2);
  out.writeUInt32BE(rest >>> 0, icmp + 4);
  out.writeUInt16BE(finish(sum16(out, icmp, ICMP_HEADER + quote)), icmp + 2);

  f4.tos = ICMP_ERROR_TOS;
  f4.totalLength = len;
  f4.id = 0;
  f4.dontFragment = false;
  f4.ttl = ICMP_ERROR_TTL;
  f4.protocol = IpProto.ICMP;
  f4.src = router;
  f4.dst = src;
  encodeIpv4(out, outOff, f4);
  return len;
}

function buildIcmp6(out: Buffer, outOff: number, pkt: Buffer, pktOff: number, pktLen: number,
  type: number, code: number, rest: number, router: Buffer, routerOff: number): number {
  if (v6.reset(pkt, pktOff).validate(pktLen) !== 0) return 0;
  if (v6.isNonFirstFragment()) return 0;
  const s0 = v6.srcWord(0);
  if ((s0 | v6.srcWord(1) | v6.srcWord(2) | v6.srcWord(3)) === 0 || isIpv6MulticastWord0(s0)) return 0;
  if (isIpv6MulticastWord0(v6.dstWord(0)) && type !== Icmp6Type.PacketTooBig) return 0;
  const total = v6.totalLength();
  if (v6.protocol() === IpProto.ICMPv6) {
    const l4 = v6.payloadOffset();
    if (l4 >= pktOff + total) return 0;
    const t = pkt[l4];
    if (isIcmp6Error(t) || t === Icmp6Type.Redirect) return 0;
  }
  if (routerOff < 0 || routerOff + 16 > router.length) return 0;
  const room = out.length - outOff - IPV6_HEADER - ICMP_HEADER;
  const quote = Math.min(total, IPV6_MIN_MTU - IPV6_HEADER - ICMP_HEADER, room);
  if (outOff < 0 || quote < IPV6_HEADER) return 0;
  const len = IPV6_HEADER + ICMP_HEADER + quote;

  const icmp = outOff + IPV6_HEADER;
  copyBytes(pkt, pktOff, out, icmp + ICMP_HEADER, quote);
  out.writeUInt32BE(0x60000000, outOff); // version 6, traffic class 0, flow label 0
  out.writeUInt16BE(ICMP_HEADER + quote, outOff + 4);
  out[outOff + 6] = IpProto.ICMPv6;
  out[outOff + 7] = ICMP_ERROR_TTL;
  copyBytes(router, routerOff, out, outOff + 8, 16);
  // Destination = the invoking source, taken from the quoted copy (the original may be overwritten).
  copyBytes(out, icmp + ICMP_HEADER + 8, out, outOff + 24, 16);
  out[icmp] = type;
  out[icmp + 1] = code;
  out.writeUInt16BE(0, icmp + 2);
  out.writeUInt32BE(rest >>> 0, icmp + 4);
  out.writeUInt16BE(l4Checksum(out, outOff, icmp, ICMP_HEADER + quote, IpProto.ICMPv6, 2), icmp + 2);
  return len;
}

/** memmove between possibly overlapping regions (even of two Buffers over one ArrayBuffer). */
function copyBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, n: number): void {
  const a = src.byteOffset + srcOff, b = dst.byteOffset + dstOff;
  if (src.buffer === dst.buffer && b > a && b < a + n) {
    for (let i = n - 1; i >= 0; i--) dst[dstOff + i] = src[srcOff + i];
  } else {
    for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i];
  }
}
