// One flow as an object: its forward key (the entry *is* a FlowKey), the verdict
// and the policy generation it was computed under, conntrack-like TCP state,
// counters, and — while the verdict is pending — the list of packets held for it.
//
// The flow cache does NOT keep these: it holds its flows in typed arrays
// (flow-cache.ts), indexed by slot. A FlowEntry exists only where an object is
// needed — a pending flow with held packets and in a miss request in flight
// (`slot` names its cache slot, -1 once evicted), a copy read out of the cache
// for a flow log or /flows (FlowCache.read) — so it is allocated on the slow
// path, never per packet.

import type { Endpoint } from '../dataplane/endpoint.js';
import { FlowKey } from '../packet/flow-key.js';
import { icmpPeerType } from '../packet/icmp.js';
import { IpProto } from '../packet/proto.js';
import { Decision } from '../workers/batch-format.js';

export const FlowState = {
  /** Waiting for a verdict; its packets are held. */
  Pending: 0,
  /** Allowed: this direction and its replies pass. */
  Allowed: 1,
  /** Denied when first seen: this direction only is dropped (a reply-direction packet is a flow of its own). */
  Denied: 2,
  /** Was allowed; a policy change denied it: both directions are dropped, like a killed connection. */
  Revoked: 3,
  /** Gave up waiting for a verdict (unlinked; a late verdict is ignored). */
  Abandoned: 4,
} as const;
export type FlowState = (typeof FlowState)[keyof typeof FlowState];

/** Bits of FlowEntry.tcp. */
export const TcpBits = {
  FinForward: 1,
  FinReverse: 2,
  Rst: 4,
  /** A packet was seen in the reply direction: the connection is established (or at least answered). */
  SeenReverse: 8,
  /** FIN both ways or RST: the entry expires soon and is not refreshed. */
  Closing: 16,
} as const;

export class FlowEntry extends FlowKey {
  /** The flow's cache slot; -1: not in the cache (evicted while pending, or a copy of a flow that left). */
  slot = -1;
  state: FlowState = FlowState.Pending;
  /** Policy generation the verdict was computed under (0: no snapshot yet). */
  generation = 0;
  /** Local endpoints the forward direction leaves / enters (undefined: remote side). */
  from: Endpoint | undefined = undefined;
  to: Endpoint | undefined = undefined;

  // Times on the cache's coarse clock (ms).
  created = 0;
  lastSeen = 0;
  expiresAt = Infinity;
  tcp = 0;

  fwdPackets = 0;
  fwdBytes = 0;
  revPackets = 0;
  revBytes = 0;

  // What decided the verdict, per direction (Decision codes; policy ids from the snapshot).
  egress: Decision = Decision.NotChecked;
  egressPolicy: string | undefined = undefined;
  egressRule = -1;
  ingress: Decision = Decision.NotChecked;
  ingressPolicy: string | undefined = undefined;
  ingressRule = -1;

  // Held packets while Pending: a list of HeldQueue slots.
  heldHead = -1;
  heldTail = -1;
  heldCount = 0;

  /** Does `k` equal this entry's key reversed (the reply direction)? Same as a reversed copy .equals(k). */
  isReverseOf(k: FlowKey): boolean {
    if (this.family !== k.family || this.protocol !== k.protocol ||
        this.src0 !== k.dst0 || this.dst0 !== k.src0 || this.srcPort !== k.dstPort || this.dstPort !== k.srcPort ||
        this.src1 !== k.dst1 || this.src2 !== k.dst2 || this.src3 !== k.dst3 ||
        this.dst1 !== k.src1 || this.dst2 !== k.src2 || this.dst3 !== k.src3 || this.icmpCode !== k.icmpCode) return false;
    let type = this.icmpType;
    if (this.protocol === IpProto.ICMP || this.protocol === IpProto.ICMPv6) {
      const peer = icmpPeerType(this.family, type);
      if (peer >= 0) type = peer;
    }
    return type === k.icmpType;
  }
}
