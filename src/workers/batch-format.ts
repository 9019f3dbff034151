// The wire format between the flow cache and the policy evaluators (inline or a
// worker pool): one Int32Array per batch of flows, transferred, never cloned.
//
//   request:  [generation, count, flow 0 (REQUEST_WORDS) ..., flow count-1]
//             flow = FlowKey.writeTo words (FLOW_KEY_WORDS) + a Side mask
//   response: [generation used, count, result 0 (RESULT_WORDS) ..., result count-1]
//             result = per side: Decision, policy index, rule index; then the
//             first Log rule that matched: side, policy index, rule index
//
// Policy indexes point into the snapshot's `policies` of the generation used.

import { FLOW_KEY_WORDS } from '../packet/flow-key.js';

export const HEADER_WORDS = 2;
export const H_GENERATION = 0;
export const H_COUNT = 1;

/** Which local sides a flow must be checked for (a host enforces only its own endpoints). */
export const Side = {
  /** The source is a local endpoint: check its egress. */
  Egress: 1,
  /** The destination is a local endpoint: check its ingress. */
  Ingress: 2,
} as const;

export const REQUEST_WORDS = FLOW_KEY_WORDS + 1;
export const Q_SIDES = FLOW_KEY_WORDS;

/** How one side's verdict was reached. Values below RuleDeny allow. */
export const Decision = {
  /** The side is not local to this host, so this host does not check it. */
  NotChecked: 0,
  /** No policy selects the endpoint for this direction: open. */
  NoPolicy: 1,
  /** The address is no known endpoint: not subject to policy. */
  NotAnEndpoint: 2,
  /** A pod talking to its own address. */
  Loopback: 3,
  RuleAllow: 4,
  /** A Pass rule: leaves the tier for the namespace profile, which allows. */
  RulePass: 5,
  RuleDeny: 6,
  /** Selected, but no rule allowed. */
  DefaultDeny: 7,
} as const;
export type Decision = (typeof Decision)[keyof typeof Decision];

export const DECISION_NAMES = [
  'not-checked', 'no-policy', 'not-an-endpoint', 'loopback', 'rule-allow', 'rule-pass', 'rule-deny', 'default-deny',
] as const;

export function decisionAllows(d: number): boolean {
  return d < Decision.RuleDeny;
}

export const RESULT_WORDS = 9;
export const R_EGRESS = 0;
export const R_EGRESS_POLICY = 1;
export const R_EGRESS_RULE = 2;
export const R_INGRESS = 3;
export const R_INGRESS_POLICY = 4;
export const R_INGRESS_RULE = 5;
/** 0: no Log rule matched; else the Side it matched on. */
export const R_LOG_SIDE = 6;
export const R_LOG_POLICY = 7;
export const R_LOG_RULE = 8;

/** Allocates a request for `count` flows stamped with `generation`. */
export function newRequest(generation: number, count: number): Int32Array {
  const a = new Int32Array(HEADER_WORDS + count * REQUEST_WORDS);
  a[H_GENERATION] = generation;
  a[H_COUNT] = count;
  return a;
}

/** Allocates the response to a request of `count` flows. */
export function newResponse(generation: number, count: number): Int32Array {
  const a = new Int32Array(HEADER_WORDS + count * RESULT_WORDS);
  a[H_GENERATION] = generation;
  a[H_COUNT] = count;
  return a;
}

/** Does result `i` of a response allow the flow? */
export function resultAllows(res: Int32Array, i: number): boolean {
  const o = HEADER_WORDS + i * RESULT_WORDS;
  return decisionAllows(res[o + R_EGRESS]) && decisionAllows(res[o + R_INGRESS]);
}
