// Checks shared by every backend on an inner packet coming out of the tunnel:
// it is IPv4/IPv6, long enough to hold its addresses, and its source belongs
// to the peer that sent it (anti-spoofing: a peer may only speak for its subnet).

import { i32 } from '../packet/bytes.js';
import { Drop } from '../packet/drop.js';
import type { Peer } from './peer.js';

/** Outer IPv4 (20) + UDP (8) headers that the kernel's UDP socket adds for us. */
export const OUTER_IPV4_UDP = 28;

/** Drop.None if the inner packet at `off` (`len` bytes) may have come from `peer`. */
export function checkInnerSource(buf: Buffer, off: number, len: number, peer: Peer): Drop {
  if (len < 1) return Drop.Truncated;
  const version = buf[off] >> 4;
  if (version === 4) {
    if (len < 20) return Drop.Truncated;
    return peer.containsSrc4(i32(buf, off + 12)) ? Drop.None : Drop.Spoofed;
  }
  if (version === 6) {
    if (len < 40) return Drop.Truncated;
    return peer.contains6(i32(buf, off + 8), i32(buf, off + 12), i32(buf, off + 16), i32(buf, off + 20))
      ? Drop.None : Drop.Spoofed;
  }
  return Drop.BadVersion;
}
