// Test helper: builds real IPv4/IPv6 packets (TCP, UDP, ICMP, ICMPv6, raw) with
// correct checksums, byte by byte, independently of src/packet (its own
// checksum loop), so tests can check the views and builders against it.
// Reusable by any test: import { tcp4, udp6, buildIpv4, ... } from './packet-fixtures.js'.

import ipaddr from 'ipaddr.js';

export type L4Spec =
  | { kind: 'tcp'; sport: number; dport: number; flags?: number; seq?: number; ack?: number; window?: number; options?: Buffer }
  | { kind: 'udp'; sport: number; dport: number }
  | { kind: 'icmp'; type: number; code?: number; id?: number; seq?: number; /** second header word, overrides id/seq */ rest?: number }
  | { kind: 'raw'; proto: number };

export interface Ipv4Spec {
  src: string;
  dst: string;
  ttl?: number;
  tos?: number;
  id?: number;
  df?: boolean;
  mf?: boolean;
  /** Fragment offset in bytes (multiple of 8). A non-first fragment gets no L4 header: pass l4 kind 'raw'. */
  fragOffset?: number;
  /** IP options, padded by the caller to a multiple of 4 bytes. */
  options?: Buffer;
}

export type Ipv6Ext =
  | { type: 0 | 43 | 60; /** total length in bytes, multiple of 8, default 8 */ len?: number }
  | { type: 44; offset?: number; mf?: boolean; id?: number }
  | { type: 51; /** total length in bytes, multiple of 4, default 12 */ len?: number };

export interface Ipv6Spec {
  src: string;
  dst: string;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
  ext?: Ipv6Ext[];
}

export const TCP = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16 } as const;

/** One's-complement sum folded to 16 bits (independent of src/packet/checksum.ts). */
export function inetSum(buf: Uint8Array, off: number, len: number, acc = 0): number {
  for (let i = 0; i < len; i += 2) acc += (buf[off + i] << 8) | (i + 1 < len ? buf[off + i + 1] : 0);
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}

export function ip4Bytes(s: string): Buffer {
  return Buffer.from(ipaddr.IPv4.parse(s).toByteArray());
}
export function ip6Bytes(s: string): Buffer {
  return Buffer.from(ipaddr.IPv6.parse(s).toByteArray());
}
/** int32 form, as Ipv4View.src() returns it. */
export function ip4Int(s: string): number {
  return ip4Bytes(s).readInt32BE(0);
}

function protoOf(l4: L4Spec, v6: boolean): number {
  switch (l4.kind) {
    case 'tcp': return 6;
    case 'udp': return 17;
    case 'icmp': return v6 ? 58 : 1;
    case 'raw': return l4.proto;
  }
}

/** L4 header + payload with a zero checksum field; returns [segment, checksum offset or -1]. */
function l4Segment(l4: L4Spec, payload: Buffer): [Buffer, number] {
  switch (l4.kind) {
    case 'tcp': {
      const opts = l4.options ?? Buffer.alloc(0);
      const h = Buffer.alloc(20 + opts.length);
      h.writeUInt16BE(l4.sport, 0);
      h.writeUInt16BE(l4.dport, 2);
      h.writeUInt32BE((l4.seq ?? 1000) >>> 0, 4);
      h.writeUInt32BE((l4.ack ?? 0) >>> 0, 8);
      h[12] = ((20 + opts.length) / 4) << 4;
      h[13] = l4.flags ?? TCP.SYN;
      h.writeUInt16BE(l4.window ?? 65535, 14);
      opts.copy(h, 20);
      return [Buffer.concat([h, payload]), 16];
    }
    case 'udp': {
      const h = Buffer.alloc(8);
      h.writeUInt16BE(l4.sport, 0);
      h.writeUInt16BE(l4.dport, 2);
      h.writeUInt16BE(8 + payload.length, 4);
      return [Buffer.concat([h, payload]), 6];
    }
    case 'icmp': {
      const h = Buffer.alloc(8);
      h[0] = l4.type;
      h[1] = l4.code ?? 0;
      if (l4.rest !== undefined) h.writeUInt32BE(l4.rest >>> 0, 4);
      else { h.writeUInt16BE(l4.id ?? 0, 4); h.writeUInt16BE(l4.seq ?? 0, 6); }
      return [Buffer.concat([h, payload]), 2];
    }
    case 'raw':
      return [Buffer.from(payload), -1];
  }
}

/** A complete IPv4 packet. */
export function buildIpv4(ip: Ipv4Spec, l4: L4Spec, payload: Buffer = Buffer.alloc(0)): Buffer {
  const opts = ip.options ?? Buffer.alloc(0);
  const hl = 20 + opts.length;
  const [seg, csumOff] = l4Segment(l4, payload);
  const pkt = Buffer.alloc(hl + seg.length);
  pkt[0] = 0x40 | (hl / 4);
  pkt[1] = ip.tos ?? 0;
  pkt.writeUInt16BE(pkt.length, 2);
  pkt.writeUInt16BE(ip.id ?? 0x1234, 4);
  pkt.writeUInt16BE((ip.df ? 0x4000 : 0) | (ip.mf ? 0x2000 : 0) | ((ip.fragOffset ?? 0) >> 3), 6);
  pkt[8] = ip.ttl ?? 64;
  pkt[9] = protoOf(l4, false);
  ip4Bytes(ip.src).copy(pkt, 12);
  ip4Bytes(ip.dst).copy(pkt, 16);
  opts.copy(pkt, 20);
  pkt.writeUInt16BE(~inetSum(pkt, 0, hl) & 0xffff, 10);
  seg.copy(pkt, hl);
  if (csumOff >= 0) {
    let acc: number;
    if (l4.kind === 'icmp') acc = 0; // ICMPv4: no pseudo-header
    else acc = inetSum(pkt, 12, 8, pkt[9] + seg.length);
    let c = ~inetSum(pkt, hl, seg.length, acc) & 0xffff;
    if (c === 0 && l4.kind === 'udp') c = 0xffff; // UDP: 0 means "no checksum"
    pkt.writeUInt16BE(c, hl + csumOff);
  }
  return pkt;
}

/** A complete IPv6 packet, with optional extension headers before the L4 header. */
export function buildIpv6(ip: Ipv6Spec, l4: L4Spec, payload: Buffer = Buffer.alloc(0)): Buffer {
  const proto = protoOf(l4, true);
  const exts = ip.ext ?? [];
  const extBufs: Buffer[] = exts.map((e, i) => {
    const next = i + 1 < exts.length ? exts[i + 1].type : proto;
    if (e.type === 44) {
      const b = Buffer.alloc(8);
      b[0] = next;
      b.writeUInt16BE(((e.offset ?? 0) & 0xfff8) | (e.mf ? 1 : 0), 2);
      b.writeUInt32BE(e.id ?? 0xabcd, 4);
      return b;
    }
    if (e.type === 51) {
      const len = e.len ?? 12;
      const b = Buffer.alloc(len);
      b[0] = next;
      b[1] = len / 4 - 2;
      return b;
    }
    const len = e.len ?? 8;
    const b = Buffer.alloc(len);
    b[0] = next;
    b[1] = len / 8 - 1;
    if (len >= 8) { b[2] = 1; b[3] = len - 4; } // one PadN option filling the rest
    return b;
  });
  const ext = Buffer.concat(extBufs);
  const [seg, csumOff] = l4Segment(l4, payload);
  const pkt = Buffer.alloc(40 + ext.length + seg.length);
  pkt.writeUInt32BE(((6 << 28) | ((ip.trafficClass ?? 0) << 20) | (ip.flowLabel ?? 0)) >>> 0, 0);
  pkt.writeUInt16BE(ext.length + seg.length, 4);
  pkt[6] = exts.length > 0 ? exts[0].type : proto;
  pkt[7] = ip.hopLimit ?? 64;
  ip6Bytes(ip.src).copy(pkt, 8);
  ip6Bytes(ip.dst).copy(pkt, 24);
  ext.copy(pkt, 40);
  const l4off = 40 + ext.length;
  seg.copy(pkt, l4off);
  if (csumOff >= 0) {
    const acc = inetSum(pkt, 8, 32, proto + seg.length);
    let c = ~inetSum(pkt, l4off, seg.length, acc) & 0xffff;
    if (c === 0 && l4.kind === 'udp') c = 0xffff;
    pkt.writeUInt16BE(c, l4off + csumOff);
  }
  return pkt;
}

export function tcp4(src: string, dst: string, sport: number, dport: number, flags: number = TCP.SYN, payload?: Buffer): Buffer {
  return buildIpv4({ src, dst }, { kind: 'tcp', sport, dport, flags }, payload);
}
export function udp4(src: string, dst: string, sport: number, dport: number, payload?: Buffer): Buffer {
  return buildIpv4({ src, dst }, { kind: 'udp', sport, dport }, payload);
}
/** ICMP echo request (reply = false) or reply. */
export function icmp4Echo(src: string, dst: string, id: number, seq: number, reply = false, payload?: Buffer): Buffer {
  return buildIpv4({ src, dst }, { kind: 'icmp', type: reply ? 0 : 8, id, seq }, payload);
}
export function tcp6(src: string, dst: string, sport: number, dport: number, flags: number = TCP.SYN, payload?: Buffer): Buffer {
  return buildIpv6({ src, dst }, { kind: 'tcp', sport, dport, flags }, payload);
}
export function udp6(src: string, dst: string, sport: number, dport: number, payload?: Buffer): Buffer {
  return buildIpv6({ src, dst }, { kind: 'udp', sport, dport }, payload);
}
export function icmp6Echo(src: string, dst: string, id: number, seq: number, reply = false, payload?: Buffer): Buffer {
  return buildIpv6({ src, dst }, { kind: 'icmp', type: reply ? 129 : 128, id, seq }, payload);
}

/** A copy of `pkt` placed `headroom` bytes into a larger zeroed buffer (for in-place encap tests). */
export function withHeadroom(pkt: Buffer, headroom: number, tailroom = 0): Buffer {
  const b = Buffer.alloc(headroom + pkt.length + tailroom);
  pkt.copy(b, headroom);
  return b;
}

/** True when the IPv4 header at `off` sums to 0xffff (checksum correct). */
export function ipv4HeaderChecksumOk(buf: Buffer, off = 0): boolean {
  return inetSum(buf, off, (buf[off] & 0x0f) * 4) === 0xffff;
}

/**
 * True when the transport checksum of the IP packet at `off` is correct:
 * ICMPv4 sums the message alone; TCP/UDP/ICMPv6 add the pseudo-header.
 * `l4off`/`proto` default to "right after a fixed header".
 */
export function l4ChecksumOk(buf: Buffer, off = 0, l4off?: number, proto?: number): boolean {
  const v6 = buf[off] >> 4 === 6;
  const start = l4off ?? (v6 ? off + 40 : off + (buf[off] & 0x0f) * 4);
  const p = proto ?? (v6 ? buf[off + 6] : buf[off + 9]);
  const end = v6 ? off + 40 + buf.readUInt16BE(off + 4) : off + buf.readUInt16BE(off + 2);
  const len = end - start;
  if (!v6 && p === 1) return inetSum(buf, start, len) === 0xffff;
  const acc = v6 ? inetSum(buf, off + 8, 32, p + len) : inetSum(buf, off + 12, 8, p + len);
  return inetSum(buf, start, len, acc) === 0xffff;
}
