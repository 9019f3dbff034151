// The flow key: what the flow cache and conntrack are indexed by. Filled in
// place from a parsed packet (see FlowKeyParser), compared and hashed as plain
// int32 words, so the per-packet path allocates nothing.
//
// Fields per protocol:
//   TCP/UDP/SCTP        srcPort/dstPort = the ports; icmpType = icmpCode = 0
//   ICMP echo/timestamp srcPort = dstPort = identifier; icmpType/icmpCode as sent
//   (ICMPv6 echo)       (reverse() maps 8<->0, 13<->14, 128<->129, so a reply's key
//                        equals the reversed request key)
//   other ICMP, errors  ports 0; icmpType/icmpCode as sent
//   anything else,      ports 0
//   non-first fragments
// IPv4 addresses live in src0/dst0 (int32, words 1..3 zero); IPv6 in src0..src3 /
// dst0..dst3, most significant word first.

import { icmpPeerType } from './icmp.js';
import { formatIpv4 } from './ipv4.js';
import { formatIpv6 } from './ipv6.js';
import { IpProto, protoName } from './proto.js';

/** Int32 words per key in `writeTo`/`readFrom` (batches sent to workers). */
export const FLOW_KEY_WORDS = 11;

export class FlowKey {
  /** 4 or 6; 0 for an empty key. */
  family = 0;
  protocol = 0;
  src0 = 0; src1 = 0; src2 = 0; src3 = 0;
  dst0 = 0; dst1 = 0; dst2 = 0; dst3 = 0;
  srcPort = 0;
  dstPort = 0;
  icmpType = 0;
  icmpCode = 0;

  clear(): this {
    this.family = this.protocol = 0;
    this.src0 = this.src1 = this.src2 = this.src3 = 0;
    this.dst0 = this.dst1 = this.dst2 = this.dst3 = 0;
    this.srcPort = this.dstPort = this.icmpType = this.icmpCode = 0;
    return this;
  }

  /** Sets an IPv4 TCP/UDP-style key (int32 addresses); ICMP fields zero. */
  setV4(protocol: number, src: number, dst: number, srcPort: number, dstPort: number): this {
    this.clear();
    this.family = 4;
    this.protocol = protocol;
    this.src0 = src | 0;
    this.dst0 = dst | 0;
    this.srcPort = srcPort;
    this.dstPort = dstPort;
    return this;
  }

  /** Sets an IPv6 TCP/UDP-style key from two 16-byte addresses in buffers. */
  setV6(protocol: number, srcBuf: Buffer, srcOff: number, dstBuf: Buffer, dstOff: number, srcPort: number, dstPort: number): this {
    this.clear();
    this.family = 6;
    this.protocol = protocol;
    this.src0 = srcBuf.readInt32BE(srcOff);
    this.src1 = srcBuf.readInt32BE(srcOff + 4);
    this.src2 = srcBuf.readInt32BE(srcOff + 8);
    this.src3 = srcBuf.readInt32BE(srcOff + 12);
    this.dst0 = dstBuf.readInt32BE(dstOff);
    this.dst1 = dstBuf.readInt32BE(dstOff + 4);
    this.dst2 = dstBuf.readInt32BE(dstOff + 8);
    this.dst3 = dstBuf.readInt32BE(dstOff + 12);
    this.srcPort = srcPort;
    this.dstPort = dstPort;
    return this;
  }

  equals(o: FlowKey): boolean {
    return this.family === o.family && this.protocol === o.protocol &&
      this.src0 === o.src0 && this.dst0 === o.dst0 &&
      this.srcPort === o.srcPort && this.dstPort === o.dstPort &&
      this.src1 === o.src1 && this.src2 === o.src2 && this.src3 === o.src3 &&
      this.dst1 === o.dst1 && this.dst2 === o.dst2 && this.dst3 === o.dst3 &&
      this.icmpType === o.icmpType && this.icmpCode === o.icmpCode;
  }

  copyFrom(o: FlowKey): this {
    this.family = o.family; this.protocol = o.protocol;
    this.src0 = o.src0; this.src1 = o.src1; this.src2 = o.src2; this.src3 = o.src3;
    this.dst0 = o.dst0; this.dst1 = o.dst1; this.dst2 = o.dst2; this.dst3 = o.dst3;
    this.srcPort = o.srcPort; this.dstPort = o.dstPort;
    this.icmpType = o.icmpType; this.icmpCode = o.icmpCode;
    return this;
  }

  /** Turns the key into the other direction's key, in place. */
  reverse(): this {
    let t = this.src0; this.src0 = this.dst0; this.dst0 = t;
    t = this.src1; this.src1 = this.dst1; this.dst1 = t;
    t = this.src2; this.src2 = this.dst2; this.dst2 = t;
    t = this.src3; this.src3 = this.dst3; this.dst3 = t;
    t = this.srcPort; this.srcPort = this.dstPort; this.dstPort = t;
    if (this.protocol === IpProto.ICMP || this.protocol === IpProto.ICMPv6) {
      const peer = icmpPeerType(this.family, this.icmpType);
      if (peer >= 0) this.icmpType = peer;
    }
    return this;
  }

  /** 32-bit hash of the key, as a signed int32 (a Smi): index a table with `h & (size - 1)`. */
  hash(): number {
    let h = mix(SEED, (this.family << 8) | this.protocol);
    h = mix(h, this.src0);
    h = mix(h, this.dst0);
    if (this.family === 6) {
      h = mix(h, this.src1); h = mix(h, this.src2); h = mix(h, this.src3);
      h = mix(h, this.dst1); h = mix(h, this.dst2); h = mix(h, this.dst3);
    }
    h = mix(h, (this.srcPort << 16) | this.dstPort);
    h = mix(h, (this.icmpType << 8) | this.icmpCode);
    return fmix(h);
  }

  /**
   * Direction-independent hash: a key and its reverse() hash the same, so
   * conntrack finds both directions in one bucket. The two endpoints are fed
   * in a canonical order; an echo-style ICMP type is replaced by min(type, peer type).
   */
  hashSymmetric(): number {
    let h = mix(SEED ^ 0x5bd1e995, (this.family << 8) | this.protocol);
    if (this.srcFirst()) {
      h = this.mixEndpoint(h, this.src0, this.src1, this.src2, this.src3, this.srcPort);
      h = this.mixEndpoint(h, this.dst0, this.dst1, this.dst2, this.dst3, this.dstPort);
    } else {
      h = this.mixEndpoint(h, this.dst0, this.dst1, this.dst2, this.dst3, this.dstPort);
      h = this.mixEndpoint(h, this.src0, this.src1, this.src2, this.src3, this.srcPort);
    }
    let type = this.icmpType;
    if (this.protocol === IpProto.ICMP || this.protocol === IpProto.ICMPv6) {
      const peer = icmpPeerType(this.family, type);
      if (peer >= 0 && peer < type) type = peer;
    }
    h = mix(h, (type << 8) | this.icmpCode);
    return fmix(h);
  }

  /** Writes FLOW_KEY_WORDS int32 words at `off` (for batches to worker threads). */
  writeTo(a: Int32Array, off: number): void {
    a[off] = (this.family << 8) | this.protocol;
    a[off + 1] = this.src0; a[off + 2] = this.src1; a[off + 3] = this.src2; a[off + 4] = this.src3;
    a[off + 5] = this.dst0; a[off + 6] = this.dst1; a[off + 7] = this.dst2; a[off + 8] = this.dst3;
    a[off + 9] = (this.srcPort << 16) | this.dstPort;
    a[off + 10] = (this.icmpType << 8) | this.icmpCode;
  }

  readFrom(a: Int32Array, off: number): this {
    this.family = (a[off] >>> 8) & 0xff; this.protocol = a[off] & 0xff;
    this.src0 = a[off + 1]; this.src1 = a[off + 2]; this.src2 = a[off + 3]; this.src3 = a[off + 4];
    this.dst0 = a[off + 5]; this.dst1 = a[off + 6]; this.dst2 = a[off + 7]; this.dst3 = a[off + 8];
    this.srcPort = a[off + 9] >>> 16; this.dstPort = a[off + 9] & 0xffff;
    this.icmpType = (a[off + 10] >>> 8) & 0xff; this.icmpCode = a[off + 10] & 0xff;
    return this;
  }

  /** "tcp 10.0.0.1:1234 > 10.0.0.2:80", "icmpv6 [fd00::1] > [fd00::2] type 128/0 id 7". Logs only. */
  toString(): string {
    const icmp = this.protocol === IpProto.ICMP || this.protocol === IpProto.ICMPv6;
    const addr = (a: number, b: number, c: number, d: number): string => {
      if (this.family !== 6) return formatIpv4(a);
      const buf = Buffer.alloc(16);
      buf.writeInt32BE(a, 0); buf.writeInt32BE(b, 4); buf.writeInt32BE(c, 8); buf.writeInt32BE(d, 12);
      return `[${formatIpv6(buf, 0)}]`;
    };
    const s = addr(this.src0, this.src1, this.src2, this.src3);
    const d = addr(this.dst0, this.dst1, this.dst2, this.dst3);
    const name = protoName(this.protocol);
    if (icmp) {
      const id = icmpPeerType(this.family, this.icmpType) >= 0 ? ` id ${this.srcPort}` : '';
      return `${name} ${s} > ${d} type ${this.icmpType}/${this.icmpCode}${id}`;
    }
    if (this.srcPort === 0 && this.dstPort === 0) return `${name} ${s} > ${d}`;
    return `${name} ${s}:${this.srcPort} > ${d}:${this.dstPort}`;
  }

  private srcFirst(): boolean {
    if (this.src0 !== this.dst0) return this.src0 < this.dst0;
    if (this.src1 !== this.dst1) return this.src1 < this.dst1;
    if (this.src2 !== this.dst2) return this.src2 < this.dst2;
    if (this.src3 !== this.dst3) return this.src3 < this.dst3;
    return this.srcPort <= this.dstPort;
  }

  private mixEndpoint(h: number, a: number, b: number, c: number, d: number, port: number): number {
    h = mix(h, a);
    if (this.family === 6) { h = mix(h, b); h = mix(h, c); h = mix(h, d); }
    return mix(h, port);
  }
}

const SEED = 0x9747b28c | 0;

/** One MurmurHash3 (x86_32) body round: folds int32 `k` into `h`. */
function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** MurmurHash3 finaliser: avalanches the last bits. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
