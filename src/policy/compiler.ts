// Compiler: ResourceSet -> PolicySnapshot (see snapshot.ts for the format).
//
// 1. endpoints: every pod with an address and not on the host network, sorted by ns/name;
// 2. policies sorted into evaluation order (see evaluator.ts / docs/policy-order.md);
// 3. per policy, the endpoints its selector picks (namespaced kinds: only pods of its
//    namespace; GlobalNetworkPolicy: pods of namespaces matching its namespaceSelector,
//    all pods without one), appended to each endpoint's ingress/egress list per `types`;
// 4. per rule side, selectors become endpoint bitsets, scoped as Calico scopes them
//    (updateprocessors/rules.go): a namespaceSelector sets the scope; otherwise a
//    namespaced policy's selector/notSelector fields are limited to its own namespace
//    (so a namespaced notSelector-only side matches pods of that namespace minus the
//    notSelector's), and a global policy's are unscoped; notSelector itself is unscoped.
// Selector results are cached by (scope, canonical selector), so repeated selectors
// across thousands of policies are evaluated once.

import type { Cidr } from './ip.js';
import { canonicalIP, maskWords } from './ip.js';
import {
  endpointLabels, namespaceSelectorLabels, podIPs, type Action, type EntityRule, type Namespace, type Pod,
  type Policy, type PortSpec, type ResourceSet, type Rule,
} from './model.js';
import { ALL, labelsOf, type Labels, type Selector } from './selector.js';
import {
  ACTION_ALLOW, ACTION_DENY, ACTION_LOG, ACTION_PASS, SNAPSHOT_FORMAT, type CidrTable, type EndpointTable,
  type PolicySnapshot, type PolicyTable, type PortTable, type RuleTable, type SideTable,
} from './snapshot.js';

export interface CompileOptions {
  /** Policy generation stamped on the snapshot (default: one more than the last compile in this process). */
  generation?: number;
}

let lastGeneration = 0;

const ACTIONS: Readonly<Record<Action, number>> = { Allow: ACTION_ALLOW, Deny: ACTION_DENY, Pass: ACTION_PASS, Log: ACTION_LOG };

type Scope = { kind: 'ns'; ns: string } | { kind: 'nssel'; selector: Selector } | { kind: 'all' };

function scopeKey(s: Scope): string {
  return s.kind === 'ns' ? `ns:${s.ns}` : s.kind === 'nssel' ? `nssel:${s.selector.toString()}` : 'all';
}

/** Calico's policy order: order ascending (unset last), then name, namespace, kind. */
export function comparePolicies(a: Policy, b: Policy): number {
  const oa = a.order ?? Infinity, ob = b.order ?? Infinity;
  if (oa !== ob) return oa < ob ? -1 : 1;
  const keys: [string, string][] = [[a.sortName, b.sortName], [a.namespace ?? '', b.namespace ?? ''], [a.kind, b.kind]];
  for (const [x, y] of keys) if (x !== y) return x < y ? -1 : 1;
  return 0;
}

class EndpointIndex {
  readonly pods: Pod[];
  readonly labels: Labels[];
  readonly byNamespace = new Map<string, number[]>();
  readonly namespaces: Map<string, Namespace>;
  readonly #members = new Map<string, readonly number[]>();
  readonly #nsMatches = new Map<string, ReadonlySet<string>>();
  readonly #setIndex = new Map<string, number>();
  readonly sets: Uint32Array[] = [];

  constructor(set: ResourceSet) {
    this.namespaces = new Map(set.namespaces.map((n) => [n.name, n]));
    this.pods = set.pods
      .filter((p) => !p.hostNetwork && podIPs(p).length > 0)
      .sort((a, b) => (a.namespace === b.namespace ? (a.name < b.name ? -1 : 1) : a.namespace < b.namespace ? -1 : 1));
    this.labels = this.pods.map((p) => labelsOf(endpointLabels(p)));
    this.pods.forEach((p, i) => {
      let list = this.byNamespace.get(p.namespace);
      if (!list) this.byNamespace.set(p.namespace, (list = []));
      list.push(i);
    });
  }

  #namespacesMatching(sel: Selector): ReadonlySet<string> {
    const key = sel.toString();
    let out = this.#nsMatches.get(key);
    if (!out) {
      const names = new Set<string>();
      for (const ns of this.namespaces.values()) if (sel.matches(labelsOf(namespaceSelectorLabels(ns)))) names.add(ns.name);
      this.#nsMatches.set(key, (out = names));
    }
    return out;
  }

  #candidates(scope: Scope): Iterable<number> {
    if (scope.kind === 'ns') return this.byNamespace.get(scope.ns) ?? [];
    if (scope.kind === 'all') return this.pods.keys();
    const out: number[] = [];
    for (const ns of this.#namespacesMatching(scope.selector)) out.push(...(this.byNamespace.get(ns) ?? []));
    return out.sort((a, b) => a - b);
  }

  /** Endpoint indexes in `scope` matching `selector`, cached. */
  members(scope: Scope, selector: Selector): readonly number[] {
    const key = `${scopeKey(scope)}\u0000${selector.toString()}`;
    let out = this.#members.get(key);
    if (!out) {
      const list: number[] = [];
      for (const i of this.#candidates(scope)) if (selector.matches(this.labels[i])) list.push(i);
      this.#members.set(key, (out = list));
    }
    return out;
  }

  /** Index in `sets` of the bitset for (scope, selector). */
  setIndex(scope: Scope, selector: Selector): number {
    const key = `${scopeKey(scope)}\u0000${selector.toString()}`;
    let idx = this.#setIndex.get(key);
    if (idx === undefined) {
      const bits = new Uint32Array(Math.max(1, Math.ceil(this.pods.length / 32)));
      for (const i of this.members(scope, selector)) bits[i >>> 5] |= 1 << (i & 31);
      idx = this.sets.length;
      this.sets.push(bits);
      this.#setIndex.set(key, idx);
    }
    return idx;
  }
}

function cidrTable(list: readonly Cidr[]): CidrTable {
  const v4: number[] = [], v6: number[] = [];
  for (const c of list) {
    const mask = maskWords(c.family, c.prefix);
    if (c.family === 4) v4.push(c.words[0], mask[0]);
    else v6.push(...c.words, ...mask);
  }
  return { v4: Uint32Array.from(v4), v6: Uint32Array.from(v6) };
}

function portTable(list: readonly PortSpec[]): PortTable {
  const ranges: [number, number][] = [];
  const names: string[] = [];
  for (const p of list) {
    if (p.kind === 'range') ranges.push([p.from, p.to]);
    else if (!names.includes(p.name)) names.push(p.name);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: number[] = [];
  for (const [from, to] of ranges) {
    const n = merged.length;
    if (n > 0 && from <= merged[n - 1] + 1) merged[n - 1] = Math.max(merged[n - 1], to);
    else merged.push(from, to);
  }
  return { ranges: Uint32Array.from(merged), names };
}

function sideTable(index: EndpointIndex, policy: Policy, e: EntityRule): SideTable | null {
  const hasSelector = e.selector !== undefined || e.notSelector !== undefined || e.namespaceSelector !== undefined;
  if (!hasSelector && !e.nets && !e.notNets && !e.ports && !e.notPorts) return null;
  const scope: Scope | undefined = e.namespaceSelector !== undefined
    ? { kind: 'nssel', selector: e.namespaceSelector }
    : policy.namespace !== undefined ? { kind: 'ns', ns: policy.namespace } : undefined;
  let selector = -1;
  if (e.selector !== undefined) selector = index.setIndex(scope ?? { kind: 'all' }, e.selector);
  else if (hasSelector && scope !== undefined) selector = index.setIndex(scope, ALL);
  return {
    nets: e.nets ? cidrTable(e.nets) : null,
    notNets: e.notNets ? cidrTable(e.notNets) : null,
    selector,
    notSelector: e.notSelector !== undefined ? index.setIndex({ kind: 'all' }, e.notSelector) : -1,
    ports: e.ports ? portTable(e.ports) : null,
    notPorts: e.notPorts ? portTable(e.notPorts) : null,
  };
}

function ruleTable(index: EndpointIndex, policy: Policy, r: Rule): RuleTable {
  return {
    index: r.index,
    action: ACTIONS[r.action],
    protocol: r.protocol ?? -1,
    notProtocol: r.notProtocol ?? -1,
    icmpType: r.icmp?.type ?? -1,
    icmpCode: r.icmp?.code ?? -1,
    notIcmpType: r.notICMP?.type ?? -1,
    notIcmpCode: r.notICMP?.code ?? -1,
    ipVersion: r.ipVersion ?? 0,
    src: sideTable(index, policy, r.source),
    dst: sideTable(index, policy, r.destination),
  };
}

/** Compiles a validated ResourceSet into a snapshot for evaluate(). */
export function compile(set: ResourceSet, opts: CompileOptions = {}): PolicySnapshot {
  const generation = opts.generation ?? lastGeneration + 1;
  lastGeneration = Math.max(lastGeneration, generation);
  const index = new EndpointIndex(set);
  const ingressLists: number[][] = index.pods.map(() => []);
  const egressLists: number[][] = index.pods.map(() => []);
  const sorted = [...set.policies].sort(comparePolicies);
  const policies: PolicyTable[] = sorted.map((p, pi) => {
    const scope: Scope = p.namespace !== undefined
      ? { kind: 'ns', ns: p.namespace }
      : p.namespaceSelector !== undefined ? { kind: 'nssel', selector: p.namespaceSelector } : { kind: 'all' };
    for (const ep of index.members(scope, p.selector)) {
      if (p.types.ingress) ingressLists[ep].push(pi);
      if (p.types.egress) egressLists[ep].push(pi);
    }
    return {
      id: p.id,
      kind: p.kind,
      namespace: p.namespace ?? null,
      name: p.name,
      order: p.order ?? Infinity,
      ingress: p.types.ingress ? p.ingress.map((r) => ruleTable(index, p, r)) : [],
      egress: p.types.egress ? p.egress.map((r) => ruleTable(index, p, r)) : [],
    };
  });
  const endpointByIP = new Map<string, number>();
  const endpoints: EndpointTable[] = index.pods.map((pod, i) => {
    const ips = podIPs(pod).map((ip) => canonicalIP(ip) ?? ip);
    for (const ip of ips) endpointByIP.set(ip, i);
    return {
      key: `${pod.namespace}/${pod.name}`,
      namespace: pod.namespace,
      name: pod.name,
      ips,
      ingress: Int32Array.from(ingressLists[i]),
      egress: Int32Array.from(egressLists[i]),
      namedPorts: pod.ports.filter((p) => p.name !== undefined).map((p) => ({ name: p.name!, protocol: p.protocol, port: p.port })),
    };
  });
  return { format: SNAPSHOT_FORMAT, generation, endpointByIP, endpoints, policies, sets: index.sets };
}
