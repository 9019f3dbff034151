// Fills a FlowKey from one IP packet (IPv4 or IPv6, chosen by the version
// nibble) and leaves the parsed views and per-packet facts on itself for the
// rest of the pipeline (TCP flags for conntrack, L4 offset, fragment state), so
// nothing is parsed twice. One parser per pipeline stage, reused per packet.

import { u16 } from './bytes.js';
import { Drop } from './drop.js';
import { FlowKey } from './flow-key.js';
import { IcmpView, icmpPeerType, isIcmp4Error, isIcmp6Error } from './icmp.js';
import { Ipv4View } from './ipv4.js';
import { Ipv6View } from './ipv6.js';
import { IpProto } from './proto.js';
import { TcpView } from './tcp.js';
import { UdpView } from './udp.js';

/** Values of FlowKeyParser.fragment. */
export const Fragment = {
  None: 0,
  /** First fragment: carries the L4 header, so the ports are known. */
  First: 1,
  /** Later fragment: no L4 header; the key has ports 0. */
  NonFirst: 2,
} as const;

const SCTP_MIN_HEADER = 12;

export class FlowKeyParser {
  readonly ip4 = new Ipv4View();
  readonly ip6 = new Ipv6View();
  readonly tcp = new TcpView();
  readonly udp = new UdpView();
  readonly icmp = new IcmpView();

  // Facts about the last packet parsed successfully.
  /** 4 or 6. */
  family = 0;
  /** Bytes of the IP packet by its own length field (may be less than the `len` read). */
  ipLength = 0;
  /** Buffer offset of the upper-layer header, and its length to the end of the IP packet. */
  l4Offset = 0;
  l4Length = 0;
  /** TCP flags byte, 0 for other protocols. */
  tcpFlags = 0;
  /** A Fragment value. */
  fragment: number = Fragment.None;
  /** The packet is an ICMP/ICMPv6 error message (its payload quotes another packet). */
  icmpError = false;

  /** Parses the IP packet of `len` bytes at `off` into `key`; returns Drop.None or why it is malformed. */
  parse(buf: Buffer, off: number, len: number, key: FlowKey): Drop {
    if (len < 1 || off + len > buf.length) return Drop.Truncated;
    this.tcpFlags = 0;
    this.icmpError = false;
    const version = buf[off] >> 4;
    key.clear();
    let nonFirst: boolean;
    if (version === 4) {
      const ip = this.ip4.reset(buf, off);
      const r = ip.validate(len);
      if (r !== Drop.None) return r;
      key.family = this.family = 4;
      key.protocol = ip.protocol();
      key.src0 = ip.src();
      key.dst0 = ip.dst();
      this.ipLength = ip.totalLength();
      this.l4Offset = ip.payloadOffset();
      this.l4Length = this.ipLength - ip.headerLength();
      nonFirst = ip.isNonFirstFragment();
      this.fragment = nonFirst ? Fragment.NonFirst : ip.moreFragments() ? Fragment.First : Fragment.None;
    } else if (version === 6) {
      const ip = this.ip6.reset(buf, off);
      const r = ip.validate(len);
      if (r !== Drop.None) return r;
      key.family = this.family = 6;
      key.protocol = ip.protocol();
      key.src0 = ip.srcWord(0); key.src1 = ip.srcWord(1); key.src2 = ip.srcWord(2); key.src3 = ip.srcWord(3);
      key.dst0 = ip.dstWord(0); key.dst1 = ip.dstWord(1); key.dst2 = ip.dstWord(2); key.dst3 = ip.dstWord(3);
      this.ipLength = ip.totalLength();
      this.l4Offset = ip.payloadOffset();
      this.l4Length = off + this.ipLength - this.l4Offset;
      nonFirst = ip.isNonFirstFragment();
      this.fragment = nonFirst ? Fragment.NonFirst : ip.moreFragments() ? Fragment.First : Fragment.None;
    } else {
      return Drop.BadVersion;
    }
    if (nonFirst) return Drop.None; // no L4 header to read
    return this.parseL4(buf, key);
  }

  /**
   * Fills `key` from the packet quoted in an ICMP/ICMPv6 error (`len` bytes at
   * `off`, e.g. `icmp.quoteOffset()` after parse() set icmpError). The quote is
   * cut short by design, so only the IP header and the first 4 bytes of
   * TCP/UDP/SCTP (8 of ICMP) are required. The key is the original packet's,
   * i.e. the flow the error is about as its sender saw it (reverse() it to match
   * the direction the error travels). Uses its own views: the facts of the last
   * parse() stay intact.
   */
  parseQuoted(buf: Buffer, off: number, len: number, key: FlowKey): Drop {
    if (len < 1 || off + len > buf.length) return Drop.Truncated;
    key.clear();
    const version = buf[off] >> 4;
    let l4: number, end: number;
    if (version === 4) {
      const ip = this.#q4.reset(buf, off);
      const r = ip.validateQuoted(len);
      if (r !== Drop.None) return r;
      key.family = 4;
      key.protocol = ip.protocol();
      key.src0 = ip.src();
      key.dst0 = ip.dst();
      if (ip.isNonFirstFragment()) return Drop.None;
      l4 = ip.payloadOffset();
      end = off + Math.min(len, ip.totalLength());
    } else if (version === 6) {
      const ip = this.#q6.reset(buf, off);
      const r = ip.validateQuoted(len);
      if (r !== Drop.None) return r;
      key.family = 6;
      key.protocol = ip.protocol();
      key.src0 = ip.srcWord(0); key.src1 = ip.srcWord(1); key.src2 = ip.srcWord(2); key.src3 = ip.srcWord(3);
      key.dst0 = ip.dstWord(0); key.dst1 = ip.dstWord(1); key.dst2 = ip.dstWord(2); key.dst3 = ip.dstWord(3);
      if (ip.isNonFirstFragment()) return Drop.None;
      l4 = ip.payloadOffset();
      end = off + Math.min(len, ip.totalLength());
    } else {
      return Drop.BadVersion;
    }
    const avail = end - l4;
    switch (key.protocol) {
      case IpProto.TCP:
      case IpProto.UDP:
      case IpProto.SCTP:
        if (avail < 4) return Drop.BadL4;
        key.srcPort = u16(buf, l4);
        key.dstPort = u16(buf, l4 + 2);
        return Drop.None;
      case IpProto.ICMP:
      case IpProto.ICMPv6: {
        if ((key.protocol === IpProto.ICMPv6) !== (key.family === 6)) return Drop.None;
        if (avail < 8) return Drop.BadL4;
        const type = buf[l4];
        key.icmpType = type;
        key.icmpCode = buf[l4 + 1];
        if (icmpPeerType(key.family, type) >= 0) key.srcPort = key.dstPort = u16(buf, l4 + 4);
        return Drop.None;
      }
      default:
        return Drop.None;
    }
  }

  readonly #q4 = new Ipv4View();
  readonly #q6 = new Ipv6View();

  private parseL4(buf: Buffer, key: FlowKey): Drop {
    const l4 = this.l4Offset, len = this.l4Length;
    switch (key.protocol) {
      case IpProto.TCP: {
        const r = this.tcp.reset(buf, l4).validate(len);
        if (r !== Drop.None) return r;
        key.srcPort = this.tcp.srcPort();
        key.dstPort = this.tcp.dstPort();
        this.tcpFlags = this.tcp.flags();
        return Drop.None;
      }
      case IpProto.UDP: {
        const r = this.udp.reset(buf, l4).validate(len);
        if (r !== Drop.None) return r;
        key.srcPort = this.udp.srcPort();
        key.dstPort = this.udp.dstPort();
        return Drop.None;
      }
      case IpProto.SCTP: {
        if (len < SCTP_MIN_HEADER) return Drop.BadL4;
        key.srcPort = u16(buf, l4);
        key.dstPort = u16(buf, l4 + 2);
        return Drop.None;
      }
      case IpProto.ICMP:
      case IpProto.ICMPv6: {
        // ICMP in the wrong IP version is just an unknown protocol.
        const v6 = key.protocol === IpProto.ICMPv6;
        if (v6 !== (key.family === 6)) return Drop.None;
        const r = this.icmp.reset(buf, l4).validate(len);
        if (r !== Drop.None) return r;
        const type = this.icmp.type();
        key.icmpType = type;
        key.icmpCode = this.icmp.code();
        if (icmpPeerType(key.family, type) >= 0) {
          key.srcPort = key.dstPort = this.icmp.echoId();
        } else {
          this.icmpError = v6 ? isIcmp6Error(type) : isIcmp4Error(type);
        }
        return Drop.None;
      }
      default:
        return Drop.None;
    }
  }
}
