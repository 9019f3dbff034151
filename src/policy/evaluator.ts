// Evaluator: a pure function (snapshot, flow) -> verdict, shared by the datapath, the
// worker pool and `sluice policy check`/`matrix`.
//
// EVALUATION ORDER (also in docs/policy-order.md) — Calico's, with one tier:
//   A flow is allowed iff the source endpoint's EGRESS allows it AND the destination
//   endpoint's INGRESS allows it. A side whose address is not a known endpoint (outside
//   the cluster, a node, a pod we do not know) is not checked ('not-an-endpoint').
//   A pod talking to its own address never leaves the pod ('loopback': allowed).
//   Per endpoint and direction:
//   1. Take the policies that select the endpoint and whose types include the direction,
//      in Calico's order: `order` ascending, policies without `order` after all others;
//      ties broken by name, then namespace, then kind. Kubernetes NetworkPolicies take
//      part as Calico converts them: order 1000, name "knp.default.<name>" — so Calico
//      policies with order < 1000 run before them, and those with no order after them.
//   2. None: allowed ('no-policy'); the endpoint is not isolated in this direction.
//   3. Otherwise go through the policies in order and each policy's rules in order; the
//      first rule that matches decides:
//        Allow -> allowed;  Deny -> denied;
//        Log   -> recorded in `logs`, evaluation continues with the next rule;
//        Pass  -> skips the remaining policies of the tier. Sluice has one tier (Calico's
//                 "default", which is also where Kubernetes policies live), so evaluation
//                 reaches the endpoint's profile; every pod has its namespace profile
//                 (Calico's kns.<ns>, which allows all), so Pass ALLOWS.
//      A policy none of whose rules match passes on to the next policy.
//   4. No rule decided: denied ('default-deny') — the end-of-tier drop. Hence a pod
//      selected only by a policy whose rules are all Log is blocked (as in Calico).
//   Kubernetes policies only contain Allow rules, so among themselves this is exactly
//   Kubernetes' "isolated if selected; allowed by the union of the rules".
//
// The hot part (rule matching) does not allocate: IPs are parsed into scratch words,
// endpoint sets are bitsets, ports are merged ranges. Only the returned verdict is new.

import { formatWords, parseIPInto, type Family } from './ip.js';
import { hasPorts } from './protocols.js';
import {
  ACTION_DENY, ACTION_LOG, ACTION_NAMES, setHas, type CidrTable, type PolicySnapshot, type PortTable,
  type RuleTable, type SideTable,
} from './snapshot.js';

export interface FlowQuery {
  src: string;
  dst: string;
  /** IANA: 6 TCP, 17 UDP, 132 SCTP, 1 ICMP, 58 ICMPv6. */
  protocol: number;
  srcPort: number;
  dstPort: number;
  icmpType?: number;
  icmpCode?: number;
}

export type Direction = 'ingress' | 'egress';

export interface DirectionVerdict {
  allowed: boolean;
  /** "ns/pod" of the endpoint whose policy was checked. */
  endpoint?: string;
  /** "kind/ns/name" (or "kind/name" for global policies) of the deciding policy. */
  policy?: string;
  /** Index of the deciding rule in the policy's ingress/egress list. */
  rule?: number;
  action?: 'Allow' | 'Deny' | 'Pass';
  reason: 'no-policy' | 'rule' | 'default-deny' | 'not-an-endpoint' | 'loopback';
}

export interface LogHit {
  direction: Direction;
  endpoint: string;
  policy: string;
  rule: number;
}

export interface Verdict {
  allowed: boolean;
  egress: DirectionVerdict;
  ingress: DirectionVerdict;
  /** Log rules that matched on the way, in evaluation order (egress first). */
  logs: readonly LogHit[];
  /** Generation of the snapshot that decided. */
  generation: number;
}

const NOT_AN_ENDPOINT: DirectionVerdict = Object.freeze({ allowed: true, reason: 'not-an-endpoint' });
const NO_LOGS: readonly LogHit[] = Object.freeze([]);

// Scratch state for one evaluate() call (single-threaded; evaluate is not re-entrant).
const srcWords = new Uint32Array(4);
const dstWords = new Uint32Array(4);
let srcFamily: Family = 4;
let dstFamily: Family = 4;
let srcEp = -1;
let dstEp = -1;
let logs: LogHit[] | null = null;

function lookup(s: PolicySnapshot, ip: string, family: Family, words: Uint32Array): number {
  const i = s.endpointByIP.get(ip);
  if (i !== undefined) return i;
  // Non-canonical IPv6 text ("fd00:0::1"): retry with the canonical form.
  if (family === 6) return s.endpointByIP.get(formatWords(6, words)) ?? -1;
  return -1;
}

function inCidrs(t: CidrTable, family: Family, w: Uint32Array): boolean {
  if (family === 4) {
    const a = t.v4, ip = w[0];
    for (let i = 0; i < a.length; i += 2) if (((ip & a[i + 1]) >>> 0) === a[i]) return true;
    return false;
  }
  const a = t.v6;
  for (let i = 0; i < a.length; i += 8) {
    if (((w[0] & a[i + 4]) >>> 0) === a[i] && ((w[1] & a[i + 5]) >>> 0) === a[i + 1] &&
        ((w[2] & a[i + 6]) >>> 0) === a[i + 2] && ((w[3] & a[i + 7]) >>> 0) === a[i + 3]) return true;
  }
  return false;
}

function portMatches(s: PolicySnapshot, t: PortTable, protocol: number, port: number, ep: number): boolean {
  if (hasPorts(protocol)) {
    const r = t.ranges;
    for (let i = 0; i < r.length; i += 2) {
      if (port < r[i]) break;
      if (port <= r[i + 1]) return true;
    }
  }
  if (t.names.length > 0 && ep >= 0) {
    const named = s.endpoints[ep].namedPorts;
    for (let n = 0; n < t.names.length; n++) {
      const name = t.names[n];
      for (let j = 0; j < named.length; j++) {
        const np = named[j];
        if (np.name === name && np.protocol === protocol && np.port === port) return true;
      }
    }
  }
  return false;
}

function sideMatches(
  s: PolicySnapshot, side: SideTable, family: Family, words: Uint32Array, ep: number, protocol: number, port: number,
): boolean {
  if (side.nets !== null && !inCidrs(side.nets, family, words)) return false;
  if (side.notNets !== null && inCidrs(side.notNets, family, words)) return false;
  if (side.selector >= 0 && (ep < 0 || !setHas(s.sets[side.selector], ep))) return false;
  if (side.notSelector >= 0 && ep >= 0 && setHas(s.sets[side.notSelector], ep)) return false;
  if (side.ports !== null && !portMatches(s, side.ports, protocol, port, ep)) return false;
  if (side.notPorts !== null && portMatches(s, side.notPorts, protocol, port, ep)) return false;
  return true;
}

function ruleMatches(s: PolicySnapshot, r: RuleTable, f: FlowQuery): boolean {
  if (r.ipVersion !== 0 && r.ipVersion !== srcFamily) return false;
  if (r.protocol >= 0 && f.protocol !== r.protocol) return false;
  if (r.notProtocol >= 0 && f.protocol === r.notProtocol) return false;
  if (r.icmpType >= 0) {
    if (f.icmpType !== r.icmpType) return false;
    if (r.icmpCode >= 0 && f.icmpCode !== r.icmpCode) return false;
  }
  if (r.notIcmpType >= 0 && f.icmpType === r.notIcmpType && (r.notIcmpCode < 0 || f.icmpCode === r.notIcmpCode)) return false;
  if (r.src !== null && !sideMatches(s, r.src, srcFamily, srcWords, srcEp, f.protocol, f.srcPort)) return false;
  if (r.dst !== null && !sideMatches(s, r.dst, dstFamily, dstWords, dstEp, f.protocol, f.dstPort)) return false;
  return true;
}

function evaluateDirection(s: PolicySnapshot, f: FlowQuery, direction: Direction, ep: number): DirectionVerdict {
  const e = s.endpoints[ep];
  const list = direction === 'ingress' ? e.ingress : e.egress;
  if (list.length === 0) return { allowed: true, endpoint: e.key, reason: 'no-policy' };
  for (let i = 0; i < list.length; i++) {
    const p = s.policies[list[i]];
    const rules = direction === 'ingress' ? p.ingress : p.egress;
    for (let j = 0; j < rules.length; j++) {
      const r = rules[j];
      if (!ruleMatches(s, r, f)) continue;
      if (r.action === ACTION_LOG) {
        (logs ??= []).push({ direction, endpoint: e.key, policy: p.id, rule: r.index });
        continue;
      }
      return {
        // Allow allows; Pass leaves the (only) tier for the namespace profile, which allows.
        allowed: r.action !== ACTION_DENY,
        endpoint: e.key,
        policy: p.id,
        rule: r.index,
        action: ACTION_NAMES[r.action] as 'Allow' | 'Deny' | 'Pass',
        reason: 'rule',
      };
    }
  }
  return { allowed: false, endpoint: e.key, reason: 'default-deny' };
}

/**
 * Evaluates a flow (its first packet) against a snapshot. Throws TypeError if src or
 * dst is not an IP address (flows come from parsed packets, so that is a caller bug).
 */
export function evaluate(s: PolicySnapshot, f: FlowQuery): Verdict {
  const sf = parseIPInto(f.src, srcWords);
  if (sf === 0) throw new TypeError(`evaluate: invalid source address ${JSON.stringify(f.src)}`);
  const df = parseIPInto(f.dst, dstWords);
  if (df === 0) throw new TypeError(`evaluate: invalid destination address ${JSON.stringify(f.dst)}`);
  srcFamily = sf;
  dstFamily = df;
  srcEp = lookup(s, f.src, sf, srcWords);
  dstEp = lookup(s, f.dst, df, dstWords);
  logs = null;
  if (srcEp >= 0 && srcEp === dstEp) {
    // Traffic to the pod's own address stays inside the pod: policy never sees it.
    const v: DirectionVerdict = { allowed: true, endpoint: s.endpoints[srcEp].key, reason: 'loopback' };
    return { allowed: true, egress: v, ingress: v, logs: NO_LOGS, generation: s.generation };
  }
  const egress = srcEp >= 0 ? evaluateDirection(s, f, 'egress', srcEp) : NOT_AN_ENDPOINT;
  const ingress = dstEp >= 0 ? evaluateDirection(s, f, 'ingress', dstEp) : NOT_AN_ENDPOINT;
  const hits = logs ?? NO_LOGS;
  logs = null;
  return { allowed: egress.allowed && ingress.allowed, egress, ingress, logs: hits, generation: s.generation };
}

