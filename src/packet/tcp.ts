// TCP header view (RFC 9293).
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |          Source Port          |       Destination Port        |  0
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                        Sequence Number                        |  4
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                    Acknowledgment Number                      |  8
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |  Data |       |C|E|U|A|P|R|S|F|                               |
// | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             | 12
// |       |       |R|E|G|K|H|T|N|N|                               |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |           Checksum            |         Urgent Pointer        | 16
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

import { u16, u32 } from './bytes.js';
import { Drop } from './drop.js';
import { HeaderView } from './header-view.js';

export const TCP_MIN_HEADER = 20;

/** Bits of the flags byte (`TcpView.flags()`). */
export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

const SPORT = 0, DPORT = 2, SEQ = 4, ACK = 8, DOFF = 12, FLAGS = 13, WIN = 14, CSUM = 16;

/** Reusable TCP header view; `validate(segmentLen)` before the accessors. */
export class TcpView extends HeaderView {
  /** `len` = bytes of the TCP segment (IP payload). BadL4 unless 20 <= data offset * 4 <= len. */
  validate(len: number): Drop {
    if (len < TCP_MIN_HEADER || this.off + len > this.buf.length) return Drop.BadL4;
    const hl = (this.buf[this.off + DOFF] >> 4) << 2;
    if (hl < TCP_MIN_HEADER || hl > len) return Drop.BadL4;
    return Drop.None;
  }

  srcPort(): number { return u16(this.buf, this.off + SPORT); }
  dstPort(): number { return u16(this.buf, this.off + DPORT); }
  /** Sequence number as uint32. */
  seqNumber(): number { return u32(this.buf, this.off + SEQ); }
  ackNumber(): number { return u32(this.buf, this.off + ACK); }
  /** Header length in bytes (data offset * 4). */
  headerLength(): number { return (this.buf[this.off + DOFF] >> 4) << 2; }
  /** The flags byte (CWR..FIN); test with TcpFlag. */
  flags(): number { return this.buf[this.off + FLAGS]; }
  syn(): boolean { return (this.buf[this.off + FLAGS] & TcpFlag.SYN) !== 0; }
  fin(): boolean { return (this.buf[this.off + FLAGS] & TcpFlag.FIN) !== 0; }
  rst(): boolean { return (this.buf[this.off + FLAGS] & TcpFlag.RST) !== 0; }
  ack(): boolean { return (this.buf[this.off + FLAGS] & TcpFlag.ACK) !== 0; }
  window(): number { return u16(this.buf, this.off + WIN); }
  checksum(): number { return u16(this.buf, this.off + CSUM); }
  payloadOffset(): number { return this.off + this.headerLength(); }
}

