// IPv4 header view (RFC 791).
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |Version|  IHL  |Type of Service|          Total Length         |  0
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |         Identification        |Flags|      Fragment Offset    |  4
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |  Time to Live |    Protocol   |         Header Checksum       |  8
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                       Source Address                          | 12
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                    Destination Address                        | 16
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                    Options                    |    Padding    | 20
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// Flags (3 bits): 0, DF (Don't Fragment), MF (More Fragments); the offset is in
// 8-byte units.

import { i32, put16, u16 } from './bytes.js';
import { Drop } from './drop.js';
import { incrementalUpdate, ipv4HeaderChecksum } from './checksum.js';
import { HeaderView } from './header-view.js';

export const IPV4_MIN_HEADER = 20;

const VER_IHL = 0, TOS = 1, TOTAL_LEN = 2, ID = 4, FRAG = 6, TTL = 8, PROTO = 9, CSUM = 10, SRC = 12, DST = 16;
const FLAG_DF = 0x4000, FLAG_MF = 0x2000, FRAG_MASK = 0x1fff;

/**
 * A reusable view over an IPv4 header in a buffer. Keep one per pipeline stage
 * and `reset()` it per packet. Call `validate()` first: after it returns
 * Drop.None the accessors read inside the packet without further checks.
 * Addresses are int32 (as `readInt32BE` reads them): 10.0.0.1 is 0x0a000001, 192.168.0.1 is
 * negative. Compare with `===`; `>>> 0` gives the unsigned value.
 */
export class Ipv4View extends HeaderView {
  /** Checks the header against `pktLen` bytes available at `off`; Drop.None if usable. */
  validate(pktLen: number): Drop {
    if (pktLen < IPV4_MIN_HEADER || this.off + pktLen > this.buf.length) return Drop.Truncated;
    const b0 = this.buf[this.off + VER_IHL];
    if (b0 >> 4 !== 4) return Drop.BadVersion;
    const hl = (b0 & 0x0f) << 2;
    if (hl < IPV4_MIN_HEADER || hl > pktLen) return Drop.BadHeaderLength;
    const total = u16(this.buf, this.off + TOTAL_LEN);
    if (total < hl || total > pktLen) return Drop.BadTotalLength;
    return Drop.None;
  }

  /**
   * Lenient check for a header quoted inside an ICMP error, of which only `avail`
   * bytes are present: the header itself must fit, the total length may not.
   */
  validateQuoted(avail: number): Drop {
    if (avail < IPV4_MIN_HEADER || this.off + avail > this.buf.length) return Drop.Truncated;
    const b0 = this.buf[this.off + VER_IHL];
    if (b0 >> 4 !== 4) return Drop.BadVersion;
    const hl = (b0 & 0x0f) << 2;
    if (hl < IPV4_MIN_HEADER || hl > avail) return Drop.BadHeaderLength;
    if (u16(this.buf, this.off + TOTAL_LEN) < hl) return Drop.BadTotalLength;
    return Drop.None;
  }

  version(): number { return this.buf[this.off] >> 4; }
  headerLength(): number { return (this.buf[this.off + VER_IHL] & 0x0f) << 2; }
  tos(): number { return this.buf[this.off + TOS]; }
  totalLength(): number { return u16(this.buf, this.off + TOTAL_LEN); }
  id(): number { return u16(this.buf, this.off + ID); }
  dontFragment(): boolean { return (u16(this.buf, this.off + FRAG) & FLAG_DF) !== 0; }
  moreFragments(): boolean { return (u16(this.buf, this.off + FRAG) & FLAG_MF) !== 0; }
  /** Fragment offset in bytes (the header field times 8). */
  fragmentOffset(): number { return (u16(this.buf, this.off + FRAG) & FRAG_MASK) << 3; }
  /** MF set or a non-zero offset: one piece of a fragmented datagram. */
  isFragment(): boolean { return (u16(this.buf, this.off + FRAG) & (FLAG_MF | FRAG_MASK)) !== 0; }
  /** A fragment other than the first: it carries no L4 header. */
  isNonFirstFragment(): boolean { return (u16(this.buf, this.off + FRAG) & FRAG_MASK) !== 0; }
  ttl(): number { return this.buf[this.off + TTL]; }
  protocol(): number { return this.buf[this.off + PROTO]; }
  checksum(): number { return u16(this.buf, this.off + CSUM); }
  src(): number { return i32(this.buf, this.off + SRC); }
  dst(): number { return i32(this.buf, this.off + DST); }
  /** Offset in the buffer of the first byte after the header (options included). */
  payloadOffset(): number { return this.off + ((this.buf[this.off + VER_IHL] & 0x0f) << 2); }
  /** totalLength - headerLength. */
  payloadLength(): number { return this.totalLength() - this.headerLength(); }

  /** True when the stored header checksum is correct. */
  checksumOk(): boolean { return ipv4HeaderChecksum(this.buf, this.off) === this.checksum(); }

  /** Recomputes and stores the header checksum. */
  updateChecksum(): void { put16(this.buf, this.off + CSUM, ipv4HeaderChecksum(this.buf, this.off)); }

  /**
   * Decrements the TTL and patches the checksum incrementally (RFC 1624).
   * Returns the new TTL. The caller drops with TtlExceeded when `ttl() <= 1` first.
   */
  decrementTtl(): number {
    const o = this.off;
    const oldWord = (this.buf[o + TTL] << 8) | this.buf[o + PROTO];
    const ttl = (this.buf[o + TTL] - 1) & 0xff;
    this.buf[o + TTL] = ttl;
    put16(this.buf, o + CSUM, incrementalUpdate(this.checksum(), oldWord, (ttl << 8) | this.buf[o + PROTO]));
    return ttl;
  }
}

/** Mutable, reusable input for `encodeIpv4` (builders take fields, views read). */
export class Ipv4Fields {
  tos = 0;
  totalLength = IPV4_MIN_HEADER;
  id = 0;
  dontFragment = false;
  ttl = 64;
  protocol = 0;
  /** int32 addresses, as returned by Ipv4View.src()/dst(). */
  src = 0;
  dst = 0;
}

/** Writes a 20-byte option-less IPv4 header with a correct checksum at `off`; returns 20. */
export function encodeIpv4(buf: Buffer, off: number, f: Ipv4Fields): number {
  buf[off + VER_IHL] = 0x45;
  buf[off + TOS] = f.tos;
  buf.writeUInt16BE(f.totalLength, off + TOTAL_LEN);
  buf.writeUInt16BE(f.id, off + ID);
  buf.writeUInt16BE(f.dontFragment ? FLAG_DF : 0, off + FRAG);
  buf[off + TTL] = f.ttl;
  buf[off + PROTO] = f.protocol;
  buf.writeInt32BE(f.src | 0, off + SRC);
  buf.writeInt32BE(f.dst | 0, off + DST);
  buf.writeUInt16BE(0, off + CSUM);
  buf.writeUInt16BE(ipv4HeaderChecksum(buf, off), off + CSUM);
  return IPV4_MIN_HEADER;
}

/** 224.0.0.0/4 (as int32). */
export function isIpv4Multicast(addr: number): boolean {
  return (addr >>> 28) === 0xe;
}

/**
 * Addresses that do not name a single host (RFC 1122 3.2.2 / 3.3.6): 0.0.0.0,
 * 127/8 loopback, 224/4 multicast, 240/4 class E including 255.255.255.255.
 */
export function isIpv4NonUnicast(addr: number): boolean {
  const top = addr >>> 24;
  return addr === 0 || top === 127 || top >= 224;
}

/** "10.0.0.1" from an int32/uint32 address; for logs only. */
export function formatIpv4(addr: number): string {
  return `${(addr >>> 24) & 0xff}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

