// The encapsulation seam. A backend writes its header in front of the inner IP
// packet, in the headroom the read loop reserved, so encapsulation never copies
// the packet; the outer IPv4 + UDP headers come from the kernel's UDP socket.
// Backends are listed in an explicit registry (no registration by import).
//
//   buf: ... | headroom (overlay header) | inner IP packet ... |
//            ^ encap() return value       ^ innerOff
//            = UDP payload start

import type { Peer } from './peer.js';
import { UdpBackend } from './udp-encap.js';
import { VxlanBackend } from './vxlan.js';

export type BackendType = 'vxlan' | 'udp';

/** What we are on the overlay. */
export interface OverlayLocal {
  /** Our VTEP MAC, 6 bytes (inner Ethernet source on encap, expected destination on decap). */
  readonly vtepMac: Buffer;
}

export interface BackendOptions {
  local: OverlayLocal;
  /** VXLAN network identifier (vxlan only), default 1. */
  vni?: number;
  /** Underlay UDP port, default 8472 (vxlan) / 8285 (udp). */
  port?: number;
}

export interface OverlayBackend {
  readonly type: BackendType;
  /** Underlay UDP port we listen on and send to by default. */
  readonly port: number;
  /** Bytes written in front of the inner IP packet. */
  readonly headroom: number;
  /** headroom + outer IPv4 (20) + UDP (8): subtract from the underlay MTU for the TUN MTU. */
  readonly overhead: number;
  /**
   * Writes the overlay header for `peer` in front of the inner packet at `innerOff`.
   * `local` supplies our VTEP MAC (normally the same object as BackendOptions.local,
   * which decap checks the inner destination MAC against).
   * Returns the start of the UDP payload (innerOff - headroom), or a negative Drop code
   * (-Drop.Malformed: headroom missing, -Drop.Truncated: empty, -Drop.BadVersion: not IP).
   */
  encap(buf: Buffer, innerOff: number, innerLen: number, peer: Peer, local: OverlayLocal): number;
  /**
   * Checks the UDP payload of `len` bytes at `off` received from `peer` (looked up by
   * underlay address). Returns the inner IP packet's offset (>= 0; it runs to off + len),
   * or a negative Drop code.
   */
  decap(buf: Buffer, off: number, len: number, peer: Peer): number;
}

export type BackendFactory = (opts: BackendOptions) => OverlayBackend;

export const backends: ReadonlyMap<BackendType, BackendFactory> = new Map<BackendType, BackendFactory>([
  ['vxlan', (o) => new VxlanBackend(o)],
  ['udp', (o) => new UdpBackend(o)],
]);

/** The backend for a config's `backend.type`; throws a TypeError naming an unknown type. */
export function createBackend(type: string, opts: BackendOptions): OverlayBackend {
  const f = backends.get(type as BackendType);
  if (!f) throw new TypeError(`backend.type: unknown backend ${JSON.stringify(type)} (expected one of ${[...backends.keys()].join(', ')})`);
  return f(opts);
}
