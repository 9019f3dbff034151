// IPv6 header view (RFC 8200), with a bounded walk over extension headers.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |Version| Traffic Class |           Flow Label                  |  0
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |         Payload Length        |  Next Header  |   Hop Limit   |  4
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                         Source Address (128 bits)             |  8
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                      Destination Address (128 bits)           | 24
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Extension headers walked (all start with Next Header, then a length byte):
//   Hop-by-Hop 0, Routing 43, Destination Options 60: length = (HdrExtLen + 1) * 8
//   Authentication Header 51 (RFC 4302):              length = (PayloadLen + 2) * 4
//   Fragment 44, fixed 8 bytes:
//   | Next Header |   Reserved    |      Fragment Offset    |Res|M|
//   |                         Identification                        |

import { i32, u16 } from './bytes.js';
import { Drop } from './drop.js';
import { IpProto } from './proto.js';
import { HeaderView } from './header-view.js';

export const IPV6_HEADER = 40;
/** Longest extension-header chain we walk; longer chains are dropped (BadExtHeader). */
export const IPV6_MAX_EXT_HEADERS = 8;

const PAYLOAD_LEN = 4, NEXT = 6, HOP = 7, SRC = 8, DST = 24;

/**
 * A reusable view over an IPv6 header. `validate()` checks the fixed header and
 * walks the extension headers; afterwards `protocol()`/`payloadOffset()` give
 * the upper layer, and the fragment accessors describe a Fragment header if one
 * was seen. For a non-first fragment the walk stops after the Fragment header:
 * `protocol()` is its Next Header and `payloadOffset()` points at fragment data.
 * Addresses are read as four int32 words (`srcWord(0..3)`), never as strings.
 */
export class Ipv6View extends HeaderView {
  #proto = 0;
  #l4off = 0;
  #fragOff = 0;
  #mf = false;
  #hasFrag = false;
  #fragId = 0;
  #extCount = 0;

  /** Checks the header against `pktLen` bytes at `off` and walks the extension headers. */
  validate(pktLen: number): Drop {
    const buf = this.buf, off = this.off;
    if (pktLen < IPV6_HEADER || off + pktLen > buf.length) return Drop.Truncated;
    if (buf[off] >> 4 !== 6) return Drop.BadVersion;
    const end = off + IPV6_HEADER + u16(buf, off + PAYLOAD_LEN);
    if (end > off + pktLen) return Drop.BadTotalLength;
    return this.#walk(end);
  }

  /**
   * Lenient check for a header quoted inside an ICMPv6 error, of which only
   * `avail` bytes are present: the walk stops at whichever end comes first.
   */
  validateQuoted(avail: number): Drop {
    const buf = this.buf, off = this.off;
    if (avail < IPV6_HEADER || off + avail > buf.length) return Drop.Truncated;
    if (buf[off] >> 4 !== 6) return Drop.BadVersion;
    return this.#walk(Math.min(off + IPV6_HEADER + u16(buf, off + PAYLOAD_LEN), off + avail));
  }

  /** Walks the extension headers up to buffer offset `end`; records the upper layer. */
  #walk(end: number): Drop {
    const buf = this.buf, off = this.off;
    this.#fragOff = 0;
    this.#mf = false;
    this.#hasFrag = false;
    this.#fragId = 0;
    let nh = buf[off + NEXT];
    let p = off + IPV6_HEADER;
    let n = 0;
    for (;;) {
      let len: number;
      if (nh === IpProto.HopOpts || nh === IpProto.Routing || nh === IpProto.DstOpts) {
        // Hop-by-Hop is only allowed directly after the fixed header (RFC 8200 4.3).
        if (nh === IpProto.HopOpts && n !== 0) return Drop.BadExtHeader;
        if (p + 2 > end) return Drop.BadExtHeader;
        len = (buf[p + 1] + 1) << 3;
      } else if (nh === IpProto.AH) {
        if (p + 2 > end) return Drop.BadExtHeader;
        len = (buf[p + 1] + 2) << 2;
      } else if (nh === IpProto.Fragment) {
        if (this.#hasFrag) return Drop.BadExtHeader;
        len = 8;
        if (p + len > end) return Drop.BadExtHeader;
        const fo = u16(buf, p + 2);
        this.#hasFrag = true;
        this.#fragOff = fo & 0xfff8;
        this.#mf = (fo & 1) !== 0;
        this.#fragId = i32(buf, p + 4); // int32 in the field, uint32 from the accessor
        if (this.#fragOff !== 0) {
          // Non-first fragment: what follows is data, not a header.
          nh = buf[p];
          p += len;
          n++;
          break;
        }
      } else {
        break; // upper layer (or ESP / No Next Header): stop here
      }
      if (p + len > end) return Drop.BadExtHeader;
      nh = buf[p];
      p += len;
      if (++n > IPV6_MAX_EXT_HEADERS) return Drop.BadExtHeader;
    }
    this.#proto = nh;
    this.#l4off = p;
    this.#extCount = n;
    return Drop.None;
  }

  version(): number { return this.buf[this.off] >> 4; }
  trafficClass(): number { return (u16(this.buf, this.off) >> 4) & 0xff; }
  flowLabel(): number { return i32(this.buf, this.off) & 0xfffff; }
  /** The fixed header's Payload Length (extension headers included). */
  payloadLength(): number { return u16(this.buf, this.off + PAYLOAD_LEN); }
  /** 40 + payloadLength(): the bytes of this packet. */
  totalLength(): number { return IPV6_HEADER + u16(this.buf, this.off + PAYLOAD_LEN); }
  /** The fixed header's Next Header field (may be an extension header). */
  nextHeader(): number { return this.buf[this.off + NEXT]; }
  hopLimit(): number { return this.buf[this.off + HOP]; }
  /** Upper-layer protocol after the extension headers (valid after validate()). */
  protocol(): number { return this.#proto; }
  /** Buffer offset of the upper-layer header (valid after validate()). */
  payloadOffset(): number { return this.#l4off; }
  /** Bytes from payloadOffset() to the end of the packet. */
  upperLayerLength(): number { return this.off + this.totalLength() - this.#l4off; }
  /** Number of extension headers walked. */
  extHeaderCount(): number { return this.#extCount; }
  hasFragmentHeader(): boolean { return this.#hasFrag; }
  /** A real fragment: offset non-zero or M set (an "atomic fragment" is not one). */
  isFragment(): boolean { return this.#fragOff !== 0 || this.#mf; }
  isNonFirstFragment(): boolean { return this.#fragOff !== 0; }
  /** Fragment offset in bytes. */
  fragmentOffset(): number { return this.#fragOff; }
  moreFragments(): boolean { return this.#mf; }
  fragmentId(): number { return this.#fragId >>> 0; }

  /** Word `i` (0..3) of the source address as int32, most significant first. */
  srcWord(i: number): number { return i32(this.buf, this.off + SRC + (i << 2)); }
  dstWord(i: number): number { return i32(this.buf, this.off + DST + (i << 2)); }
  srcOffset(): number { return this.off + SRC; }
  dstOffset(): number { return this.off + DST; }

  /** Decrements the hop limit (IPv6 has no header checksum); returns the new value. */
  decrementHopLimit(): number {
    const h = (this.buf[this.off + HOP] - 1) & 0xff;
    this.buf[this.off + HOP] = h;
    return h;
  }
}

/** ff00::/8, from the first address word. */
export function isIpv6MulticastWord0(w0: number): boolean {
  return (w0 >>> 24) === 0xff;
}

/** True for :: (unspecified) given the four words. */
export function isIpv6Unspecified(w0: number, w1: number, w2: number, w3: number): boolean {
  return (w0 | w1 | w2 | w3) === 0;
}

/** Compressed text form of a 16-byte address at `off`; for logs only. */
export function formatIpv6(buf: Uint8Array, off: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((buf[off + i] << 8) | buf[off + i + 1]);
  // RFC 5952: compress the longest run (>= 2) of zero groups, leftmost on ties.
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

