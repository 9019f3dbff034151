// ICMP (RFC 792) and ICMPv6 (RFC 4443) header view. Both share the layout of
// the first 8 bytes; only the type numbers differ.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |     Type      |     Code      |          Checksum             |  0
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |           Identifier          |        Sequence Number        |  4  (echo)
// |            unused             |         Next-Hop MTU          |  4  (v4 frag needed)
// |                              MTU                              |  4  (v6 packet too big)
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |     (errors) as much of the invoking packet as fits ...       |  8

import { u16, u32 } from './bytes.js';
import { Drop } from './drop.js';
import { HeaderView } from './header-view.js';

export const ICMP_HEADER = 8;

export const Icmp4Type = {
  EchoReply: 0,
  DestUnreachable: 3,
  SourceQuench: 4,
  Redirect: 5,
  Echo: 8,
  TimeExceeded: 11,
  ParameterProblem: 12,
  Timestamp: 13,
  TimestampReply: 14,
} as const;

/** ICMPv4 Destination Unreachable codes. */
export const Icmp4Unreach = {
  Net: 0,
  Host: 1,
  Protocol: 2,
  Port: 3,
  FragNeeded: 4,
  AdminProhibited: 13,
} as const;

export const Icmp6Type = {
  DestUnreachable: 1,
  PacketTooBig: 2,
  TimeExceeded: 3,
  ParameterProblem: 4,
  EchoRequest: 128,
  EchoReply: 129,
  Redirect: 137,
} as const;

/** ICMPv6 Destination Unreachable codes. */
export const Icmp6Unreach = {
  NoRoute: 0,
  AdminProhibited: 1,
  BeyondScope: 2,
  Address: 3,
  Port: 4,
  SourcePolicy: 5,
  RejectRoute: 6,
} as const;

/** RFC 1122 3.2.2: the ICMPv4 error types (never answered with another error). */
export function isIcmp4Error(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/** RFC 4443 2.1: ICMPv6 types 0..127 are errors. */
export function isIcmp6Error(type: number): boolean {
  return type < 128;
}

/**
 * For query/response ICMP types that carry an identifier (echo, timestamp),
 * the type of the other direction (8 <-> 0, 13 <-> 14, v6 128 <-> 129);
 * -1 for every other type. Used to pair both directions of one "flow".
 */
export function icmpPeerType(family: number, type: number): number {
  if (family === 6) return type === 128 ? 129 : type === 129 ? 128 : -1;
  switch (type) {
    case 8: return 0;
    case 0: return 8;
    case 13: return 14;
    case 14: return 13;
    default: return -1;
  }
}

const TYPE = 0, CODE = 1, CSUM = 2, ID = 4, SEQ = 6;

/** Reusable ICMP / ICMPv6 header view; `validate(messageLen)` before the accessors. */
export class IcmpView extends HeaderView {
  /** `len` = bytes of the ICMP message. BadL4 when shorter than the 8-byte header. */
  validate(len: number): Drop {
    if (len < ICMP_HEADER || this.off + len > this.buf.length) return Drop.BadL4;
    return Drop.None;
  }

  type(): number { return this.buf[this.off + TYPE]; }
  code(): number { return this.buf[this.off + CODE]; }
  checksum(): number { return u16(this.buf, this.off + CSUM); }
  /** Echo / timestamp identifier. */
  echoId(): number { return u16(this.buf, this.off + ID); }
  echoSeq(): number { return u16(this.buf, this.off + SEQ); }
  /** ICMPv4 frag-needed next-hop MTU (RFC 1191). */
  nextHopMtu(): number { return u16(this.buf, this.off + SEQ); }
  /** ICMPv6 packet-too-big MTU. */
  mtu6(): number { return u32(this.buf, this.off + ID); }
  /** Offset of the quoted invoking packet in an error message. */
  quoteOffset(): number { return this.off + ICMP_HEADER; }
}

