// Longest-prefix match over IPv4 or IPv6 prefixes without allocation per lookup.
//
// One open-addressing hash table per distinct prefix length, probed from the
// longest length down; each table keys the masked address as four int32 words
// (IPv4 uses word 0 only). A cluster normally has one or two prefix lengths
// (every host gets a /24, maybe a /64), so a lookup is one or two probes.
// Tables are rebuilt on every change: changes come from the control plane, rare.

export interface PrefixEntry<T> {
  /** Address words, most significant first (IPv4: [addr, 0, 0, 0]). Host bits may be set; they are masked. */
  words: ArrayLike<number>;
  prefix: number;
  value: T;
}

class Level<T> {
  readonly mask = new Int32Array(4);
  readonly keys: Int32Array;
  readonly vals: (T | null)[];
  readonly slotMask: number;

  constructor(readonly prefix: number, count: number) {
    for (let i = 0; i < 4; i++) this.mask[i] = wordMask(prefix - 32 * i);
    let cap = 4;
    while (cap < count * 2) cap <<= 1; // load factor <= 1/2
    this.keys = new Int32Array(cap * 4);
    this.vals = new Array<T | null>(cap).fill(null);
    this.slotMask = cap - 1;
  }
}

/** Mask for one 32-bit word when `bits` of it (clamped to 0..32) belong to the prefix. */
function wordMask(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return -1;
  return (-1 << (32 - bits)) | 0;
}

function hash4(a: number, b: number, c: number, d: number, prefix: number): number {
  let h = Math.imul(a ^ prefix, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15) ^ b, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ c, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ d, 0x27d4eb2f);
  return h ^ (h >>> 15);
}

export class PrefixMap<T> {
  #levels: Level<T>[] = [];
  #size = 0;

  /** @param bits 32 for IPv4, 128 for IPv6: the longest allowed prefix. */
  constructor(readonly bits: 32 | 128) {}

  get size(): number {
    return this.#size;
  }

  /** Replaces the contents. Throws on a prefix out of range or two entries with the same prefix. */
  rebuild(entries: readonly PrefixEntry<T>[]): void {
    const byLen = new Map<number, PrefixEntry<T>[]>();
    for (const e of entries) {
      if (!Number.isInteger(e.prefix) || e.prefix < 0 || e.prefix > this.bits) {
        throw new RangeError(`prefix length ${e.prefix} out of range 0..${this.bits}`);
      }
      let list = byLen.get(e.prefix);
      if (!list) byLen.set(e.prefix, (list = []));
      list.push(e);
    }
    const levels: Level<T>[] = [];
    for (const [prefix, list] of byLen) {
      const level = new Level<T>(prefix, list.length);
      for (const e of list) {
        if (!insert(level, e.words, e.value)) throw new Error(`duplicate prefix /${prefix}`);
      }
      levels.push(level);
    }
    levels.sort((x, y) => y.prefix - x.prefix);
    this.#levels = levels;
    this.#size = entries.length;
  }

  /** Longest-prefix match for an IPv4 address (int32 or uint32). */
  lookup4(addr: number): T | null {
    return this.lookup(addr | 0, 0, 0, 0);
  }

  /** Longest-prefix match for an address given as four int32 words. */
  lookup(w0: number, w1: number, w2: number, w3: number): T | null {
    const levels = this.#levels;
    for (let i = 0; i < levels.length; i++) {
      const lv = levels[i], m = lv.mask;
      const a = w0 & m[0], b = w1 & m[1], c = w2 & m[2], d = w3 & m[3];
      let slot = hash4(a, b, c, d, lv.prefix) & lv.slotMask;
      for (;;) {
        const v = lv.vals[slot];
        if (v === null) break;
        const k = slot << 2;
        if (lv.keys[k] === a && lv.keys[k + 1] === b && lv.keys[k + 2] === c && lv.keys[k + 3] === d) return v;
        slot = (slot + 1) & lv.slotMask;
      }
    }
    return null;
  }
}

/** Inserts into a level; false if the masked key is already there. */
function insert<T>(lv: Level<T>, w: ArrayLike<number>, value: T): boolean {
  const m = lv.mask;
  const a = (w[0] | 0) & m[0], b = (w[1] | 0) & m[1], c = (w[2] | 0) & m[2], d = (w[3] | 0) & m[3];
  let slot = hash4(a, b, c, d, lv.prefix) & lv.slotMask;
  while (lv.vals[slot] !== null) {
    const k = slot << 2;
    if (lv.keys[k] === a && lv.keys[k + 1] === b && lv.keys[k + 2] === c && lv.keys[k + 3] === d) return false;
    slot = (slot + 1) & lv.slotMask;
  }
  const k = slot << 2;
  lv.keys[k] = a; lv.keys[k + 1] = b; lv.keys[k + 2] = c; lv.keys[k + 3] = d;
  lv.vals[slot] = value;
  return true;
}
