// The `udp` backend: Flannel's original format, the raw inner IP packet as the
// whole UDP payload (no header, no VNI), default port 8285. Nothing on the wire
// identifies the sender, so the peer lookup by underlay address and the inner
// source check are the only protection.

import { Drop } from '../packet/drop.js';
import type { BackendOptions, OverlayBackend, OverlayLocal } from './backend.js';
import { OUTER_IPV4_UDP, checkInnerSource } from './inner.js';
import type { Peer } from './peer.js';

export const UDP_DEFAULT_PORT = 8285;

export class UdpBackend implements OverlayBackend {
  readonly type = 'udp' as const;
  readonly headroom = 0;
  readonly overhead = OUTER_IPV4_UDP;
  readonly port: number;

  constructor(opts: BackendOptions) {
    const port = opts.port ?? UDP_DEFAULT_PORT;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TypeError(`udp: port must be an integer in 1..65535, got ${JSON.stringify(opts.port)}`);
    }
    this.port = port;
  }

  encap(buf: Buffer, innerOff: number, innerLen: number, _peer: Peer, _local: OverlayLocal): number {
    if (innerOff < 0 || innerLen < 1 || innerOff + innerLen > buf.length) return -Drop.Truncated;
    const version = buf[innerOff] >> 4;
    if (version !== 4 && version !== 6) return -Drop.BadVersion;
    return innerOff;
  }

  decap(buf: Buffer, off: number, len: number, peer: Peer): number {
    if (off + len > buf.length) return -Drop.Truncated;
    const r = checkInnerSource(buf, off, len, peer);
    return r === Drop.None ? off : -r;
  }
}
