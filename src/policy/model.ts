// The policy model: what manifests are loaded into. Kubernetes and Calico policies
// share one internal form (Calico's, since Calico is a superset), translated by
// k8s-policy.ts and calico-policy.ts with each API's exact semantics.

import type { Cidr } from './ip.js';
import type { Selector } from './selector.js';

/** Label every namespace carries, as Kubernetes sets it. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
/** Labels Calico adds to every workload endpoint (and so visible to selectors). */
export const CALICO_NAMESPACE_LABEL = 'projectcalico.org/namespace';
export const CALICO_ORCHESTRATOR_LABEL = 'projectcalico.org/orchestrator';
export const CALICO_SERVICE_ACCOUNT_LABEL = 'projectcalico.org/serviceaccount';
/** Namespace label Calico's namespaceSelectors may use (`projectcalico.org/name == 'x'`). */
export const CALICO_NAMESPACE_NAME_LABEL = 'projectcalico.org/name';

/** Where a resource came from, for messages: file (or other source) and 1-based document index. */
export interface Origin {
  source: string;
  doc: number;
  /** Path prefix inside the document ("items[2]" for List items), or "". */
  path: string;
}

export interface Namespace {
  name: string;
  /** Includes kubernetes.io/metadata.name=<name>. */
  labels: Readonly<Record<string, string>>;
  /** True when no Namespace manifest declared it but a pod or policy lives in it. */
  implicit: boolean;
  origin?: Origin;
}

export type ProtocolNumber = number; // IANA: 6 TCP, 17 UDP, 132 SCTP, 1 ICMP, 58 ICMPv6, 136 UDPLite

export interface ContainerPort {
  name?: string;
  port: number;
  protocol: ProtocolNumber;
}

export interface Pod {
  namespace: string;
  name: string;
  labels: Readonly<Record<string, string>>;
  nodeName?: string;
  serviceAccount?: string;
  hostNetwork: boolean;
  /** status.podIPs (or status.podIP), canonical text. */
  statusIPs: readonly string[];
  /** An address the lab assigned; when set it is the pod's address (see podIPs). */
  labIP?: string;
  ports: readonly ContainerPort[];
  origin?: Origin;
}

export type PolicyKind = 'KubernetesNetworkPolicy' | 'CalicoNetworkPolicy' | 'GlobalNetworkPolicy';
export type Action = 'Allow' | 'Deny' | 'Pass' | 'Log';

export type PortSpec =
  | { kind: 'range'; from: number; to: number } // inclusive
  | { kind: 'named'; name: string };

/** One side (source or destination) of a rule. All present fields must match (AND). */
export interface EntityRule {
  nets?: readonly Cidr[];
  notNets?: readonly Cidr[];
  selector?: Selector;
  notSelector?: Selector;
  namespaceSelector?: Selector;
  ports?: readonly PortSpec[];
  notPorts?: readonly PortSpec[];
}

export interface IcmpMatch {
  type: number;
  code?: number;
}

export interface Rule {
  /** Index of the rule in the manifest's ingress/egress list (what verdicts report). */
  index: number;
  action: Action;
  protocol?: ProtocolNumber;
  notProtocol?: ProtocolNumber;
  icmp?: IcmpMatch;
  notICMP?: IcmpMatch;
  ipVersion?: 4 | 6;
  source: EntityRule;
  destination: EntityRule;
}

export interface Policy {
  kind: PolicyKind;
  /** "kind/ns/name", or "kind/name" for GlobalNetworkPolicy. */
  id: string;
  name: string;
  /** Set for namespaced kinds. */
  namespace?: string;
  /** Undefined = after every ordered policy (Calico's +Inf). Kubernetes policies: 1000. */
  order?: number;
  /** The name Calico sorts ties by (Kubernetes policies: "knp.default.<name>"). */
  sortName: string;
  /** Selects endpoints (within `namespace` for namespaced kinds). */
  selector: Selector;
  /** GlobalNetworkPolicy only: namespaces whose endpoints it may select. */
  namespaceSelector?: Selector;
  types: { ingress: boolean; egress: boolean };
  ingress: readonly Rule[];
  egress: readonly Rule[];
  origin?: Origin;
}

/** A validated, consistent set of resources (immutable by convention). */
export interface ResourceSet {
  namespaces: readonly Namespace[];
  pods: readonly Pod[];
  policies: readonly Policy[];
}

export function policyId(kind: PolicyKind, name: string, namespace?: string): string {
  return namespace === undefined ? `${kind}/${name}` : `${kind}/${namespace}/${name}`;
}

/** The addresses traffic of the pod uses: the lab's, else the status IPs. */
export function podIPs(pod: Pod): readonly string[] {
  return pod.labIP !== undefined ? [pod.labIP] : pod.statusIPs;
}

/** Labels a selector sees on a pod: its own plus those Calico adds (which win, as in Calico). */
export function endpointLabels(pod: Pod): Record<string, string> {
  const labels: Record<string, string> = { ...pod.labels };
  labels[CALICO_NAMESPACE_LABEL] = pod.namespace;
  labels[CALICO_ORCHESTRATOR_LABEL] = 'k8s';
  if (pod.serviceAccount !== undefined) labels[CALICO_SERVICE_ACCOUNT_LABEL] = pod.serviceAccount;
  return labels;
}

/** Labels a namespaceSelector sees: the namespace's plus Calico's projectcalico.org/name. */
export function namespaceSelectorLabels(ns: Namespace): Record<string, string> {
  return { ...ns.labels, [CALICO_NAMESPACE_NAME_LABEL]: ns.name, [NAMESPACE_NAME_LABEL]: ns.name };
}

/** Returns a copy of the set where `assign` may give IP-less (or any) pods a lab address. */
export function withLabIPs(set: ResourceSet, assign: (pod: Pod) => string | undefined): ResourceSet {
  return {
    ...set,
    pods: set.pods.map((p) => {
      const ip = assign(p);
      return ip === undefined ? p : { ...p, labIP: ip };
    }),
  };
}
