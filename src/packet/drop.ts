// Drop reasons. The hot path never throws on a bad packet: it returns one of
// these codes (overlay decap returns it negated), and the caller counts it in a
// DropCounters indexed by the code. Codes are small integers so they are Smis,
// and a plain `as const` object (not a TS enum) so they survive isolatedModules.

export const Drop = {
  /** Not a drop: the packet is fine. */
  None: 0,
  // --- malformed packets (Drop.Malformed .. Drop.BadL4, see isMalformed) ---
  /** Malformed, no finer reason. */
  Malformed: 1,
  /** Shorter than the header (or the encapsulation) it claims to carry. */
  Truncated: 2,
  /** IP version nibble is not the expected 4 / 6. */
  BadVersion: 3,
  /** IPv4 IHL < 5 or past the end of the packet. */
  BadHeaderLength: 4,
  /** IPv4 total length < header length or > bytes read; IPv6 payload length past the end. */
  BadTotalLength: 5,
  /** IPv6 extension header chain runs past the payload, repeats, or is too long. */
  BadExtHeader: 6,
  /** TCP/UDP/ICMP header too short, TCP data offset < 5 or past the segment, UDP length wrong. */
  BadL4: 7,
  // --- forwarding ---
  NoRoute: 8,
  /** Inner source address outside the sending peer's subnet. */
  Spoofed: 9,
  /** Overlay packet from an underlay address that is no known peer. */
  UnknownPeer: 10,
  /** VXLAN VNI differs from ours. */
  BadVni: 11,
  /** VXLAN flags: I bit clear or a reserved bit/byte set (the Linux driver drops these too). */
  BadOverlayFlags: 12,
  /** Inner Ethernet type is not IPv4/IPv6, or disagrees with the inner IP version nibble. */
  BadEthertype: 13,
  /** Inner destination MAC is not our VTEP MAC. */
  WrongMac: 14,
  PolicyDenied: 15,
  QueueFull: 16,
  /** Larger than the path MTU (an ICMP frag-needed / packet-too-big may be sent). */
  TooBig: 17,
  TtlExceeded: 18,
  /** A datapath thread's queue of misses for the JS thread was full. */
  RingFull: 19,
} as const;

export type Drop = (typeof Drop)[keyof typeof Drop];

/** Number of codes, i.e. the length of a table indexed by Drop. */
export const DROP_REASON_COUNT = 20;

const NAMES: readonly string[] = (() => {
  const names = new Array<string>(DROP_REASON_COUNT).fill('');
  for (const [name, code] of Object.entries(Drop)) names[code] = name;
  return names;
})();

/** The reason's name ("BadVni"), or "Unknown(n)" for a code out of range. For metrics and logs. */
export function dropName(code: number): string {
  return code >= 0 && code < DROP_REASON_COUNT ? NAMES[code] : `Unknown(${code})`;
}

/** True for the malformed-packet family (Malformed and its sub-reasons). */
export function isMalformed(code: number): boolean {
  return code >= Drop.Malformed && code <= Drop.BadL4;
}

/**
 * Per-reason drop counters. One instance per pipeline stage / worker; `count`
 * is a typed-array increment. Counts are float64 so they never wrap.
 */
export class DropCounters {
  readonly counts = new Float64Array(DROP_REASON_COUNT);

  /** Adds `n` (default 1) to `reason`. Drop.None is ignored; codes out of range count as Malformed. */
  count(reason: number, n = 1): void {
    if (reason === Drop.None) return;
    this.counts[reason > 0 && reason < DROP_REASON_COUNT ? reason : Drop.Malformed] += n;
  }

  get(reason: number): number {
    return this.counts[reason];
  }

  /** Sum over all reasons (Drop.None is never counted). */
  total(): number {
    let t = 0;
    for (let i = 1; i < DROP_REASON_COUNT; i++) t += this.counts[i];
    return t;
  }

  /** Adds another set of counters into this one (merging per-worker counters). */
  addFrom(other: DropCounters): void {
    for (let i = 1; i < DROP_REASON_COUNT; i++) this.counts[i] += other.counts[i];
  }

  reset(): void {
    this.counts.fill(0);
  }

  /** `{ Truncated: 3, BadVni: 0, ... }` with every reason except None; for metrics export. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 1; i < DROP_REASON_COUNT; i++) out[NAMES[i]] = this.counts[i];
    return out;
  }
}
