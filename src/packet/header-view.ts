// What every header view shares: a buffer and an offset, re-pointed per packet
// with reset() so one view serves a whole pipeline stage without allocating.
const EMPTY = Buffer.alloc(0);

export abstract class HeaderView {
  buf: Buffer = EMPTY;
  off = 0;

  reset(buf: Buffer, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }
}
