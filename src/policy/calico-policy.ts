// Calico projectcalico.org/v3 NetworkPolicy and GlobalNetworkPolicy -> internal Policy.
// Field semantics follow Calico's docs and validator (libcalico-go/lib/validator/v3):
//   - order: lower first, unset = after every ordered policy; ties by name;
//   - types default: [Ingress] unless only egress rules exist ([Egress]) or both do;
//   - rule criteria are ANDed, list-valued fields ORed; ports are numbers, "a:b" ranges
//     or named ports; numeric ports need protocol TCP, UDP, SCTP or UDPLite;
//   - icmp/notICMP need protocol ICMP or ICMPv6, and code needs type.
// Unsupported Calico features (tiers other than default, service accounts, services,
// HTTP match, host-endpoint-only flags) are rejected rather than silently ignored.

import { FieldError, joinPath } from './errors.js';
import { parseCidr, type Cidr } from './ip.js';
import type { Action, EntityRule, IcmpMatch, Policy, PolicyKind, PortSpec, Rule } from './model.js';
import { policyId } from './model.js';
import { ICMP, ICMPV6, hasPorts, parseProtocol } from './protocols.js';
import { ALL } from './selector.js';
import { checkInt, checkPortName, selectorField } from './validation.js';

export interface CalicoEntityRule {
  nets?: readonly string[] | null;
  notNets?: readonly string[] | null;
  selector?: string | null;
  notSelector?: string | null;
  namespaceSelector?: string | null;
  ports?: readonly (number | string)[] | null;
  notPorts?: readonly (number | string)[] | null;
  serviceAccounts?: unknown;
  services?: unknown;
}

export interface CalicoIcmp {
  type?: number | null;
  code?: number | null;
}

export interface CalicoRule {
  action: Action;
  protocol?: number | string | null;
  notProtocol?: number | string | null;
  icmp?: CalicoIcmp | null;
  notICMP?: CalicoIcmp | null;
  ipVersion?: number | null;
  source?: CalicoEntityRule | null;
  destination?: CalicoEntityRule | null;
  http?: unknown;
}

export interface CalicoPolicySpec {
  tier?: string | null;
  order?: number | null;
  selector?: string | null;
  types?: readonly ('Ingress' | 'Egress')[] | null;
  ingress?: readonly CalicoRule[] | null;
  egress?: readonly CalicoRule[] | null;
  serviceAccountSelector?: string | null;
  namespaceSelector?: string | null; // GlobalNetworkPolicy only (the schema enforces it)
  doNotTrack?: boolean | null;
  preDNAT?: boolean | null;
}

function unsupported(path: string, what: string): never {
  throw new FieldError(path, `${what} is not supported by sluice`);
}

function netsField(list: readonly string[], path: string): Cidr[] {
  return list.map((text, i) => {
    const c = parseCidr(text, true);
    if (typeof c === 'string') throw new FieldError(joinPath(path, i), c);
    return c;
  });
}

/** A Calico port: 80, "80", "1000:2000" (inclusive) or a port name. */
function portField(value: number | string, path: string): PortSpec {
  if (typeof value === 'number') {
    const p = checkInt(value, 0, 65535, path, 'port');
    return { kind: 'range', from: p, to: p };
  }
  if (/^[0-9]+$/.test(value)) {
    const p = checkInt(Number(value), 0, 65535, path, 'port');
    return { kind: 'range', from: p, to: p };
  }
  const m = /^([0-9]+):([0-9]+)$/.exec(value);
  if (m) {
    const from = checkInt(Number(m[1]), 0, 65535, path, 'port range start');
    const to = checkInt(Number(m[2]), 0, 65535, path, 'port range end');
    if (from > to) throw new FieldError(path, `port range ${JSON.stringify(value)} must have start <= end`);
    return { kind: 'range', from, to };
  }
  checkPortName(value, path);
  return { kind: 'named', name: value };
}

function entityField(e: CalicoEntityRule | null | undefined, path: string, protocol: number | undefined): EntityRule {
  if (e == null) return {};
  if (e.serviceAccounts != null) unsupported(joinPath(path, 'serviceAccounts'), 'serviceAccounts');
  if (e.services != null) unsupported(joinPath(path, 'services'), 'services');
  const out: {
    -readonly [K in keyof EntityRule]: EntityRule[K];
  } = {};
  if (e.nets != null && e.nets.length > 0) out.nets = netsField(e.nets, joinPath(path, 'nets'));
  if (e.notNets != null && e.notNets.length > 0) out.notNets = netsField(e.notNets, joinPath(path, 'notNets'));
  if (e.selector != null && e.selector.trim() !== '') out.selector = selectorField(e.selector, joinPath(path, 'selector'));
  if (e.notSelector != null && e.notSelector.trim() !== '') out.notSelector = selectorField(e.notSelector, joinPath(path, 'notSelector'));
  if (e.namespaceSelector != null && e.namespaceSelector.trim() !== '') {
    out.namespaceSelector = selectorField(e.namespaceSelector, joinPath(path, 'namespaceSelector'));
  }
  for (const key of ['ports', 'notPorts'] as const) {
    const list = e[key];
    if (list == null || list.length === 0) continue;
    const specs = list.map((v, i) => portField(v, joinPath(joinPath(path, key), i)));
    if (specs.some((s) => s.kind === 'range') && (protocol === undefined || !hasPorts(protocol))) {
      throw new FieldError(joinPath(path, key), 'numeric ports need protocol TCP, UDP, SCTP or UDPLite');
    }
    out[key] = specs;
  }
  return out;
}

function icmpField(v: CalicoIcmp, path: string, protocol: number | undefined): IcmpMatch {
  if (protocol !== ICMP && protocol !== ICMPV6) throw new FieldError(path, 'needs protocol ICMP or ICMPv6');
  if (v.type == null) {
    if (v.code != null) throw new FieldError(joinPath(path, 'code'), 'may not be set without type');
    throw new FieldError(joinPath(path, 'type'), 'required');
  }
  const type = checkInt(v.type, 0, 254, joinPath(path, 'type'), 'ICMP type');
  if (v.code == null) return { type };
  return { type, code: checkInt(v.code, 0, 255, joinPath(path, 'code'), 'ICMP code') };
}

function protocolField(v: number | string, path: string): number {
  const p = parseProtocol(v);
  if (p === undefined) {
    throw new FieldError(path, `unknown protocol ${JSON.stringify(v)}: expected TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or 1-255`);
  }
  return p;
}

function ruleField(r: CalicoRule, index: number, path: string): Rule {
  if (r.http != null) unsupported(joinPath(path, 'http'), 'http');
  const protocol = r.protocol != null ? protocolField(r.protocol, joinPath(path, 'protocol')) : undefined;
  const rule: { -readonly [K in keyof Rule]: Rule[K] } = {
    index,
    action: r.action,
    source: entityField(r.source, joinPath(path, 'source'), protocol),
    destination: entityField(r.destination, joinPath(path, 'destination'), protocol),
  };
  if (protocol !== undefined) rule.protocol = protocol;
  if (r.notProtocol != null) rule.notProtocol = protocolField(r.notProtocol, joinPath(path, 'notProtocol'));
  if (r.icmp != null) rule.icmp = icmpField(r.icmp, joinPath(path, 'icmp'), protocol);
  if (r.notICMP != null) rule.notICMP = icmpField(r.notICMP, joinPath(path, 'notICMP'), protocol);
  if (r.ipVersion != null) {
    if (r.ipVersion !== 4 && r.ipVersion !== 6) throw new FieldError(joinPath(path, 'ipVersion'), `expected 4 or 6, got ${r.ipVersion}`);
    if ((protocol === ICMP && r.ipVersion === 6) || (protocol === ICMPV6 && r.ipVersion === 4)) {
      throw new FieldError(joinPath(path, 'ipVersion'), `does not match protocol ${protocol === ICMP ? 'ICMP' : 'ICMPv6'}`);
    }
    rule.ipVersion = r.ipVersion;
  }
  return rule;
}

export function translateCalicoPolicy(
  kind: Extract<PolicyKind, 'CalicoNetworkPolicy' | 'GlobalNetworkPolicy'>,
  name: string,
  namespace: string | undefined,
  spec: CalicoPolicySpec,
): Policy {
  if (spec.tier != null && spec.tier !== 'default') unsupported('spec.tier', `tier ${JSON.stringify(spec.tier)} (only "default")`);
  if (spec.serviceAccountSelector != null && spec.serviceAccountSelector.trim() !== '') {
    unsupported('spec.serviceAccountSelector', 'serviceAccountSelector');
  }
  if (spec.doNotTrack === true) unsupported('spec.doNotTrack', 'doNotTrack (host endpoints only)');
  if (spec.preDNAT === true) unsupported('spec.preDNAT', 'preDNAT (host endpoints only)');
  if (spec.order != null && !Number.isFinite(spec.order)) throw new FieldError('spec.order', 'must be a finite number');
  const ingress = spec.ingress ?? [];
  const egress = spec.egress ?? [];
  let types: Policy['types'];
  if (spec.types != null && spec.types.length > 0) {
    types = { ingress: spec.types.includes('Ingress'), egress: spec.types.includes('Egress') };
    if (ingress.length > 0 && !types.ingress) throw new FieldError('spec.ingress', 'ingress rules need "Ingress" in spec.types');
    if (egress.length > 0 && !types.egress) throw new FieldError('spec.egress', 'egress rules need "Egress" in spec.types');
  } else if (egress.length > 0) {
    types = { ingress: ingress.length > 0, egress: true };
  } else {
    types = { ingress: true, egress: false };
  }
  const policy: { -readonly [K in keyof Policy]: Policy[K] } = {
    kind,
    id: policyId(kind, name, namespace),
    name,
    sortName: name,
    selector: spec.selector != null && spec.selector.trim() !== '' ? selectorField(spec.selector, 'spec.selector') : ALL,
    types,
    ingress: ingress.map((r, i) => ruleField(r, i, joinPath('spec.ingress', i))),
    egress: egress.map((r, i) => ruleField(r, i, joinPath('spec.egress', i))),
  };
  if (namespace !== undefined) policy.namespace = namespace;
  if (spec.order != null) policy.order = spec.order;
  if (spec.namespaceSelector != null && spec.namespaceSelector.trim() !== '') {
    policy.namespaceSelector = selectorField(spec.namespaceSelector, 'spec.namespaceSelector');
  }
  return policy;
}
