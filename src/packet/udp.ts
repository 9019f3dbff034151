// UDP header view (RFC 768).
//
//  0      7 8     15 16    23 24    31
// +--------+--------+--------+--------+
// |     Source      |   Destination   |  0
// |      Port       |      Port       |
// +--------+--------+--------+--------+
// |     Length      |    Checksum     |  4
// +--------+--------+--------+--------+

import { u16 } from './bytes.js';
import { Drop } from './drop.js';
import { HeaderView } from './header-view.js';

export const UDP_HEADER = 8;

const SPORT = 0, DPORT = 2, LEN = 4, CSUM = 6;

/** Reusable UDP header view; `validate(datagramLen)` before the accessors. */
export class UdpView extends HeaderView {
  /** `len` = bytes of the datagram (IP payload). BadL4 unless 8 <= UDP length <= len. */
  validate(len: number): Drop {
    if (len < UDP_HEADER || this.off + len > this.buf.length) return Drop.BadL4;
    const ul = u16(this.buf, this.off + LEN);
    if (ul < UDP_HEADER || ul > len) return Drop.BadL4;
    return Drop.None;
  }

  srcPort(): number { return u16(this.buf, this.off + SPORT); }
  dstPort(): number { return u16(this.buf, this.off + DPORT); }
  /** The Length field: header plus data. */
  length(): number { return u16(this.buf, this.off + LEN); }
  checksum(): number { return u16(this.buf, this.off + CSUM); }
  payloadOffset(): number { return this.off + UDP_HEADER; }
  payloadLength(): number { return this.length() - UDP_HEADER; }
}

