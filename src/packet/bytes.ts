// Big-endian field access for the per-packet path. Same results as Buffer's
// readUInt16BE / readInt32BE / readUInt32BE / write*, without their per-call
// argument and range checks (4-5x slower on Node 20; see bench/). Callers
// validate bounds first (views: validate()); out-of-range reads yield 0 bits
// and out-of-range writes are ignored by typed arrays, so nothing throws.

export function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

/** Signed 32-bit, like readInt32BE: stays a small integer (Smi) in V8. */
export function i32(b: Uint8Array, o: number): number {
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}

/** Unsigned 32-bit, like readUInt32BE (above 2^31 it is a heap number: avoid on hot paths). */
export function u32(b: Uint8Array, o: number): number {
  return i32(b, o) >>> 0;
}

export function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

export function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}
