// A peer host of the overlay, parsed once from its lease / host record into the
// numeric form the data path compares against (no strings per packet).

import ipaddr from 'ipaddr.js';
import { i32, u16 } from '../packet/bytes.js';
import type { Ipv6View } from '../packet/ipv6.js';

/** The host record as the store delivers it (structurally the store's HostRecord). */
export interface PeerRecord {
  name: string;
  /** Underlay IPv4 address, dotted quad. */
  publicIP: string;
  /** IPv4 overlay subnet "10.244.1.0/24" (host bits must be zero). */
  subnet: string;
  /** Optional IPv6 overlay subnet "fd00:10:244:1::/64". */
  ipv6Subnet?: string;
  /** VTEP MAC "02:00:0a:f4:01:00" (unicast). */
  vtepMAC: string;
  /** Underlay UDP port, when it differs from the backend's default. */
  port?: number;
}

/** Overlay traffic with one peer (inner bytes; a TCP super-packet counts once). Survives peer updates. */
export class PeerCounters {
  rxPackets = 0;
  rxBytes = 0;
  txPackets = 0;
  txBytes = 0;
}

export class Peer {
  readonly name: string;
  /** Shared with the peer's earlier versions (PeerTable hands them over on updates). */
  counters = new PeerCounters();
  /** Underlay IPv4 address, uint32 in host order: 10.99.0.1 = 0x0a630001. */
  readonly underlayAddr: number;
  readonly port: number;
  /** 6 bytes. */
  readonly vtepMac: Buffer;
  /** The MAC as numbers for allocation-free compares: bytes 0-1 (uint16) and 2-5 (int32). */
  readonly macHi: number;
  readonly macLo: number;
  /** IPv4 subnet: network (int32), prefix length, mask (int32). */
  readonly net4: number;
  readonly prefix4: number;
  readonly mask4: number;
  /** IPv6 subnet as four int32 words; prefix6 = -1 when the peer has none. */
  readonly net6 = new Int32Array(4);
  readonly mask6 = new Int32Array(4);
  readonly prefix6: number;
  /** The record this peer was parsed from (for logs and change detection). */
  readonly record: Readonly<PeerRecord>;

  /** Parses and validates a record; throws an Error naming the host and the bad field. */
  constructor(rec: PeerRecord, defaultPort: number) {
    if (rec === null || typeof rec !== 'object') throw new Error('peer record must be an object');
    if (typeof rec.name !== 'string' || rec.name === '') throw new Error('peer record: name must be a non-empty string');
    const where = `peer "${rec.name}"`;
    this.name = rec.name;
    this.record = { ...rec };

    this.underlayAddr = parseIpv4(rec.publicIP, where, 'publicIP') >>> 0;

    const port = rec.port ?? defaultPort;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`${where}: port must be an integer in 1..65535, got ${JSON.stringify(rec.port ?? defaultPort)}`);
    }
    this.port = port;

    this.vtepMac = parseMac(rec.vtepMAC, where, 'vtepMAC');
    this.macHi = u16(this.vtepMac, 0);
    this.macLo = i32(this.vtepMac, 2);

    const [net4, prefix4] = parseCidr4(rec.subnet, where, 'subnet');
    this.net4 = net4;
    this.prefix4 = prefix4;
    this.mask4 = prefix4 === 0 ? 0 : (-1 << (32 - prefix4)) | 0;

    if (rec.ipv6Subnet === undefined || rec.ipv6Subnet === null) {
      this.prefix6 = -1;
    } else {
      this.prefix6 = parseCidr6(rec.ipv6Subnet, where, 'ipv6Subnet', this.net6);
      for (let i = 0; i < 4; i++) {
        const bits = this.prefix6 - 32 * i;
        this.mask6[i] = bits <= 0 ? 0 : bits >= 32 ? -1 : (-1 << (32 - bits)) | 0;
      }
    }
  }

  /** True when the int32 IPv4 address lies in this peer's subnet. */
  containsSrc4(addr: number): boolean {
    return (addr & this.mask4) === this.net4;
  }

  /** True when the packet's IPv6 source lies in this peer's IPv6 subnet (false if it has none). */
  containsSrc6(v: Ipv6View): boolean {
    return this.contains6(v.srcWord(0), v.srcWord(1), v.srcWord(2), v.srcWord(3));
  }

  /** Same as containsSrc6 for an address given as four int32 words. */
  contains6(w0: number, w1: number, w2: number, w3: number): boolean {
    if (this.prefix6 < 0) return false;
    const n = this.net6, m = this.mask6;
    return (w0 & m[0]) === n[0] && (w1 & m[1]) === n[1] && (w2 & m[2]) === n[2] && (w3 & m[3]) === n[3];
  }

  /** True when the 6 bytes at `off` equal this peer's VTEP MAC. */
  macEquals(buf: Buffer, off: number): boolean {
    return u16(buf, off) === this.macHi && i32(buf, off + 2) === this.macLo;
  }

  toString(): string {
    return `${this.name} (${this.record.publicIP}:${this.port}, ${this.record.subnet})`;
  }
}

function fieldError(where: string, field: string, value: unknown, why: string): Error {
  return new Error(`${where}: ${field} ${JSON.stringify(value)} ${why}`);
}

/** Strict dotted quad (no octal, hex or short forms) to int32. */
function parseIpv4(s: unknown, where: string, field: string): number {
  if (typeof s !== 'string' || !ipaddr.IPv4.isValidFourPartDecimal(s)) {
    throw fieldError(where, field, s, 'is not an IPv4 address (a.b.c.d)');
  }
  const o = ipaddr.IPv4.parse(s).octets;
  return ((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) | 0;
}

/** Splits "addr/len"; the length is -1 unless it is 1-3 decimal digits. */
function splitCidr(s: unknown, where: string, field: string, family: string): [string, number] {
  if (typeof s !== 'string') throw fieldError(where, field, s, `must be an ${family} CIDR string`);
  const slash = s.indexOf('/');
  if (slash < 0) throw fieldError(where, field, s, `is not a CIDR (${family} address/prefix length)`);
  const lenText = s.slice(slash + 1);
  return [s.slice(0, slash), /^\d{1,3}$/.test(lenText) ? Number(lenText) : -1];
}

function checkPrefix(s: string, prefix: number, where: string, field: string, maxLen: number): void {
  if (prefix < 0 || prefix > maxLen) throw fieldError(where, field, s, `has a prefix length outside 0..${maxLen}`);
}

function parseCidr4(s: unknown, where: string, field: string): [number, number] {
  const [addrText, prefix] = splitCidr(s, where, field, 'IPv4');
  if (!ipaddr.IPv4.isValidFourPartDecimal(addrText)) throw fieldError(where, field, s, 'is not an IPv4 CIDR (a.b.c.d/len)');
  checkPrefix(s as string, prefix, where, field, 32);
  const addr = parseIpv4(addrText, where, field);
  const mask = prefix === 0 ? 0 : (-1 << (32 - prefix)) | 0;
  if ((addr & mask) !== addr) throw fieldError(where, field, s, 'has host bits set (not a network address)');
  return [addr, prefix];
}

/** Parses an IPv6 CIDR into `words`; returns the prefix length. */
function parseCidr6(s: unknown, where: string, field: string, words: Int32Array): number {
  const [addrText, prefix] = splitCidr(s, where, field, 'IPv6');
  if (addrText.includes('%') || !ipaddr.IPv6.isValid(addrText)) throw fieldError(where, field, s, 'is not an IPv6 CIDR (addr/len)');
  checkPrefix(s as string, prefix, where, field, 128);
  const b = ipaddr.IPv6.parse(addrText).toByteArray();
  for (let i = 0; i < 4; i++) {
    words[i] = (b[4 * i] << 24) | (b[4 * i + 1] << 16) | (b[4 * i + 2] << 8) | b[4 * i + 3];
    const bits = prefix - 32 * i;
    const m = bits <= 0 ? 0 : bits >= 32 ? -1 : (-1 << (32 - bits)) | 0;
    if ((words[i] & m) !== words[i]) throw fieldError(where, field, s, 'has host bits set (not a network address)');
  }
  return prefix;
}

/** "02:00:0a:f4:01:00" to 6 bytes; rejects multicast/broadcast and all-zero MACs. */
export function parseMac(s: unknown, where: string, field: string): Buffer {
  if (typeof s !== 'string' || !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s)) {
    throw fieldError(where, field, s, 'is not a MAC address (xx:xx:xx:xx:xx:xx)');
  }
  const mac = Buffer.from(s.split(':').map((h) => parseInt(h, 16)));
  if (mac[0] & 1) throw fieldError(where, field, s, 'is a multicast/broadcast MAC; a VTEP MAC must be unicast');
  if (mac.every((x) => x === 0)) throw fieldError(where, field, s, 'is the all-zero MAC');
  return mac;
}
