// The compiled policy snapshot: plain data only (Maps, arrays, typed arrays, numbers,
// strings), so it survives structuredClone / postMessage to worker threads intact and
// the evaluator needs no classes. Built by compiler.ts, read by evaluator.ts.
//
// Indexes that keep evaluation independent of the number of policies:
//   endpointByIP      IP text -> endpoint index
//   endpoints[i]      the ordered policy indexes that select it, per direction
//   sets[k]           bitset over endpoint indexes: a rule's peer selector, precomputed
//   rules             protocol numbers, merged port ranges, CIDR word tables

import type { PolicyKind } from './model.js';

export const SNAPSHOT_FORMAT = 1;

export const ACTION_ALLOW = 0;
export const ACTION_DENY = 1;
export const ACTION_PASS = 2;
export const ACTION_LOG = 3;
export const ACTION_NAMES = ['Allow', 'Deny', 'Pass', 'Log'] as const;

export interface CidrTable {
  /** [network, mask] pairs. */
  v4: Uint32Array;
  /** [network0..3, mask0..3] groups of eight words. */
  v6: Uint32Array;
}

export interface PortTable {
  /** Sorted, merged, inclusive [from, to] pairs. */
  ranges: Uint32Array;
  /** Named ports, resolved on the endpoint of the side (source or destination). */
  names: string[];
}

export interface SideTable {
  nets: CidrTable | null;
  notNets: CidrTable | null;
  /** Index into sets of the (scoped) selector, or -1. */
  selector: number;
  notSelector: number;
  ports: PortTable | null;
  notPorts: PortTable | null;
}

export interface RuleTable {
  /** The rule's index in its manifest list. */
  index: number;
  action: number;
  /** -1 = unset. */
  protocol: number;
  notProtocol: number;
  icmpType: number;
  icmpCode: number;
  notIcmpType: number;
  notIcmpCode: number;
  /** 0 = any. */
  ipVersion: number;
  src: SideTable | null;
  dst: SideTable | null;
}

export interface PolicyTable {
  /** "kind/ns/name" or "kind/name". */
  id: string;
  kind: PolicyKind;
  namespace: string | null;
  name: string;
  /** Infinity when unset. */
  order: number;
  ingress: RuleTable[];
  egress: RuleTable[];
}

export interface NamedPortEntry {
  name: string;
  protocol: number;
  port: number;
}

export interface EndpointTable {
  /** "ns/pod". */
  key: string;
  namespace: string;
  name: string;
  ips: string[];
  /** Policy indexes (evaluation order) that select this endpoint for ingress / egress. */
  ingress: Int32Array;
  egress: Int32Array;
  namedPorts: NamedPortEntry[];
}

export interface PolicySnapshot {
  format: typeof SNAPSHOT_FORMAT;
  generation: number;
  endpointByIP: Map<string, number>;
  endpoints: EndpointTable[];
  /** In evaluation order. */
  policies: PolicyTable[];
  /** Endpoint bitsets: bit i of word i >>> 5. */
  sets: Uint32Array[];
}

export function setHas(set: Uint32Array, endpoint: number): boolean {
  return ((set[endpoint >>> 5] >>> (endpoint & 31)) & 1) === 1;
}
