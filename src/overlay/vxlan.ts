// VXLAN backend (RFC 7348), wire-compatible with a Linux kernel vxlan device set
// up the way Flannel's vxlan backend does it (VNI 1, port 8472, static FDB/ARP
// entries per peer with the peer's VTEP MAC).
//
// UDP payload:
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |R|R|R|R|I|R|R|R|            Reserved                           |  0  VXLAN
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                VXLAN Network Identifier (VNI) |   Reserved    |  4
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                  Destination MAC (peer's VTEP MAC)            |  8  inner Ethernet
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |    (dst cont.)                |     Source MAC (our VTEP MAC) | 12
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                       (src cont.)                             | 16
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |   EtherType 0x0800 / 0x86DD  |  inner IP packet ...          | 20 / 22
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Receive rules follow the kernel driver (vxlan_rcv): the I flag must be set and
// every reserved bit zero (the kernel deliberately drops such frames, unlike the
// RFC's "ignore"). We also drop frames not addressed to our VTEP MAC and inner
// frames that are not IPv4/IPv6 (ARP never arrives: peers have static entries).

import { i32, put16, put32, u16 } from '../packet/bytes.js';
import { Drop } from '../packet/drop.js';
import { EtherType } from '../packet/proto.js';
import type { BackendOptions, OverlayBackend, OverlayLocal } from './backend.js';
import { OUTER_IPV4_UDP, checkInnerSource } from './inner.js';
import type { Peer } from './peer.js';

export const VXLAN_DEFAULT_PORT = 8472;
export const VXLAN_DEFAULT_VNI = 1;
export const VXLAN_HEADER = 8;
export const ETHERNET_HEADER = 14;
/** VXLAN + inner Ethernet. */
export const VXLAN_HEADROOM = VXLAN_HEADER + ETHERNET_HEADER;
/** I flag: the VNI field is valid. */
const FLAG_I = 0x08;
const VNI = 4, ETH_DST = 8, ETH_SRC = 14, ETH_TYPE = 20;

export class VxlanBackend implements OverlayBackend {
  readonly type = 'vxlan' as const;
  readonly headroom = VXLAN_HEADROOM;
  readonly overhead = VXLAN_HEADROOM + OUTER_IPV4_UDP;
  readonly port: number;
  readonly vni: number;
  readonly local: OverlayLocal;
  readonly #macHi: number;
  readonly #macLo: number;

  constructor(opts: BackendOptions) {
    const vni = opts.vni ?? VXLAN_DEFAULT_VNI;
    if (!Number.isInteger(vni) || vni < 0 || vni > 0xffffff) {
      throw new TypeError(`vxlan: vni must be an integer in 0..16777215, got ${JSON.stringify(opts.vni)}`);
    }
    const port = opts.port ?? VXLAN_DEFAULT_PORT;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TypeError(`vxlan: port must be an integer in 1..65535, got ${JSON.stringify(opts.port)}`);
    }
    const mac = opts.local?.vtepMac;
    if (!Buffer.isBuffer(mac) || mac.length !== 6) throw new TypeError('vxlan: local.vtepMac must be a 6-byte Buffer');
    if (mac[0] & 1) throw new TypeError('vxlan: local.vtepMac must be a unicast MAC');
    this.vni = vni;
    this.port = port;
    this.local = opts.local;
    this.#macHi = u16(mac, 0);
    this.#macLo = i32(mac, 2);
  }

  encap(buf: Buffer, innerOff: number, innerLen: number, peer: Peer, local: OverlayLocal): number {
    const o = innerOff - VXLAN_HEADROOM;
    if (o < 0) return -Drop.Malformed;
    if (innerLen < 1 || innerOff + innerLen > buf.length) return -Drop.Truncated;
    const version = buf[innerOff] >> 4;
    const etherType = version === 4 ? EtherType.IPv4 : version === 6 ? EtherType.IPv6 : 0;
    if (etherType === 0) return -Drop.BadVersion;
    put32(buf, o, FLAG_I << 24); // flags + 24 reserved bits
    put32(buf, o + VNI, this.vni << 8); // VNI + reserved byte
    put16(buf, o + ETH_DST, peer.macHi);
    put32(buf, o + ETH_DST + 2, peer.macLo);
    const src = local.vtepMac;
    for (let i = 0; i < 6; i++) buf[o + ETH_SRC + i] = src[i];
    put16(buf, o + ETH_TYPE, etherType);
    return o;
  }

  decap(buf: Buffer, off: number, len: number, peer: Peer): number {
    if (len < VXLAN_HEADROOM + 1 || off + len > buf.length) return -Drop.Truncated;
    if (i32(buf, off) !== FLAG_I << 24 || buf[off + 7] !== 0) return -Drop.BadOverlayFlags;
    if (i32(buf, off + VNI) >>> 8 !== this.vni) return -Drop.BadVni;
    if (u16(buf, off + ETH_DST) !== this.#macHi || i32(buf, off + ETH_DST + 2) !== this.#macLo) {
      return -Drop.WrongMac;
    }
    const inner = off + VXLAN_HEADROOM;
    const et = u16(buf, off + ETH_TYPE);
    const version = buf[inner] >> 4;
    if (!((et === EtherType.IPv4 && version === 4) || (et === EtherType.IPv6 && version === 6))) return -Drop.BadEthertype;
    const r = checkInnerSource(buf, inner, len - VXLAN_HEADROOM, peer);
    return r === Drop.None ? inner : -r;
  }
}
