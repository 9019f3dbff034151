// The seam where policy meets the data path: every forwarded packet between an
// endpoint and anything else is offered to a gate, which answers from its flow
// cache (or, on a miss, asks the policy workers).
import type { FlowKey } from '../packet/flow-key.js';
import type { FlowKeyParser } from '../packet/flow-key-parser.js';
import type { Endpoint } from './endpoint.js';

export const Verdict = {
  Allow: 0,
  Deny: 1,
  /** The gate kept a copy of the packet and will release or drop it later. */
  Held: 2,
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

export interface PolicyGate {
  /**
   * Decides one packet. `from`/`to` are the local endpoints it leaves/enters
   * (undefined for the remote side). `parsed` holds the packet's parse state; `gso` is the MSS of
   * a TCP super-packet (0: an ordinary packet), kept with the packet if it is held.
   */
  decide(key: FlowKey, parsed: FlowKeyParser, len: number, from: Endpoint | undefined, to: Endpoint | undefined, gso?: number): Verdict;
  /** Called once after every batch: the moment to send the batch's misses to the policy workers. */
  endBatch?(): void;
  /**
   * Packets and bytes the native fast path forwarded for the flow of the packet decided last (the
   * flow's previous fast-path entry, handed over when it is installed again), for its counters.
   */
  addForwarded?(packets: number, bytes: number): void;
  /**
   * Changes whenever verdicts of established flows may change (a new policy snapshot). The
   * forwarder's native fast path forwards decided flows without asking the gate for a while;
   * on a change it forgets them all. A gate without it gets no such notice: a policy change then
   * reaches fast-pathed flows only when their entries expire (the fast path's TTL, fast-path.ts).
   */
  readonly generation?: number;
}

/** The gate of a host with no policy at all: Kubernetes and Calico leave unselected endpoints open. */
export const openGate: PolicyGate = { decide: () => Verdict.Allow };
