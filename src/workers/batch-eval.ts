// Evaluates a packed batch of flows against a snapshot with the one policy
// evaluator (src/policy/evaluator.ts). Runs unchanged in a pool worker and
// inline on the main thread, so both give the same verdicts by construction.
//
// A host checks only its own sides (Side mask): the source host the source's
// egress, the destination host the destination's ingress; a same-host flow both.

import { FlowKey } from '../packet/flow-key.js';
import { IpProto } from '../packet/proto.js';
import { evaluate, type DirectionVerdict, type FlowQuery } from '../policy/evaluator.js';
import { formatWords } from '../policy/ip.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import {
  Decision, H_COUNT, HEADER_WORDS, Q_SIDES, R_EGRESS, R_EGRESS_POLICY, R_EGRESS_RULE, R_INGRESS, R_INGRESS_POLICY,
  R_INGRESS_RULE, R_LOG_POLICY, R_LOG_RULE, R_LOG_SIDE, REQUEST_WORDS, RESULT_WORDS, Side,
} from './batch-format.js';

/** Policy id -> index in snapshot.policies, built once per snapshot. */
const policyIndexes = new WeakMap<PolicySnapshot, Map<string, number>>();

export function policyIndexOf(s: PolicySnapshot): Map<string, number> {
  let m = policyIndexes.get(s);
  if (m === undefined) {
    m = new Map();
    for (let i = 0; i < s.policies.length; i++) m.set(s.policies[i].id, i);
    policyIndexes.set(s, m);
  }
  return m;
}

// Scratch state (evaluation is synchronous and single-threaded per isolate).
const key = new FlowKey();
const words = new Uint32Array(4);
const query: FlowQuery = { src: '', dst: '', protocol: 0, srcPort: 0, dstPort: 0, icmpType: undefined, icmpCode: undefined };

function addr(family: number, a: number, b: number, c: number, d: number): string {
  words[0] = a; words[1] = b; words[2] = c; words[3] = d;
  return formatWords(family === 6 ? 6 : 4, words);
}

function decisionOf(v: DirectionVerdict): Decision {
  switch (v.reason) {
    case 'no-policy': return Decision.NoPolicy;
    case 'not-an-endpoint': return Decision.NotAnEndpoint;
    case 'loopback': return Decision.Loopback;
    case 'default-deny': return Decision.DefaultDeny;
    case 'rule':
      return v.action === 'Deny' ? Decision.RuleDeny : v.action === 'Pass' ? Decision.RulePass : Decision.RuleAllow;
  }
}

function writeSide(res: Int32Array, o: number, v: DirectionVerdict, index: Map<string, number>): void {
  res[o] = decisionOf(v);
  res[o + 1] = v.policy !== undefined ? index.get(v.policy) ?? -1 : -1;
  res[o + 2] = v.rule ?? -1;
}

/**
 * Fills `res` (a response of the same count) with the verdicts for the flows of
 * `req`. Without a snapshot nothing is selected, so every checked side is open.
 */
export function evaluateBatch(snapshot: PolicySnapshot | undefined, req: Int32Array, res: Int32Array): void {
  const count = req[H_COUNT];
  const index = snapshot !== undefined ? policyIndexOf(snapshot) : undefined;
  for (let i = 0; i < count; i++) {
    const q = HEADER_WORDS + i * REQUEST_WORDS;
    const o = HEADER_WORDS + i * RESULT_WORDS;
    const sides = req[q + Q_SIDES];
    res[o + R_EGRESS] = res[o + R_INGRESS] = Decision.NotChecked;
    res[o + R_EGRESS_POLICY] = res[o + R_EGRESS_RULE] = res[o + R_INGRESS_POLICY] = res[o + R_INGRESS_RULE] = -1;
    res[o + R_LOG_SIDE] = 0;
    res[o + R_LOG_POLICY] = res[o + R_LOG_RULE] = -1;
    if (sides === 0) continue;
    if (snapshot === undefined || index === undefined) {
      if (sides & Side.Egress) res[o + R_EGRESS] = Decision.NoPolicy;
      if (sides & Side.Ingress) res[o + R_INGRESS] = Decision.NoPolicy;
      continue;
    }
    key.readFrom(req, q);
    const icmp = key.protocol === IpProto.ICMP || key.protocol === IpProto.ICMPv6;
    query.src = addr(key.family, key.src0, key.src1, key.src2, key.src3);
    query.dst = addr(key.family, key.dst0, key.dst1, key.dst2, key.dst3);
    query.protocol = key.protocol;
    // ICMP echo keys carry the identifier in the port fields; policy has no ports for ICMP.
    query.srcPort = icmp ? 0 : key.srcPort;
    query.dstPort = icmp ? 0 : key.dstPort;
    query.icmpType = icmp ? key.icmpType : undefined;
    query.icmpCode = icmp ? key.icmpCode : undefined;
    const v = evaluate(snapshot, query);
    if (sides & Side.Egress) writeSide(res, o + R_EGRESS, v.egress, index);
    if (sides & Side.Ingress) writeSide(res, o + R_INGRESS, v.ingress, index);
    for (let j = 0; j < v.logs.length; j++) {
      const hit = v.logs[j];
      const side = hit.direction === 'egress' ? Side.Egress : Side.Ingress;
      if ((sides & side) === 0) continue;
      res[o + R_LOG_SIDE] = side;
      res[o + R_LOG_POLICY] = index.get(hit.policy) ?? -1;
      res[o + R_LOG_RULE] = hit.rule;
      break;
    }
  }
}
