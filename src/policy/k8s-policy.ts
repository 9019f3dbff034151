// Kubernetes networking.k8s.io/v1 NetworkPolicy -> internal Policy, the way Calico
// converts it (libcalico-go k8s/conversion K8sNetworkPolicyToCalico), keeping
// Kubernetes' exact semantics:
//   - selects pods of its namespace by podSelector; order 1000, sorted as "knp.default.<name>";
//   - policyTypes defaults to [Ingress] plus Egress iff egress rules are present;
//   - every rule is an Allow; missing/empty from|to = any peer, missing/empty ports = any
//     port and protocol; a rule is expanded to one internal rule per (peer x protocol);
//   - peer podSelector alone = pods of the policy's namespace; namespaceSelector alone =
//     all pods of the selected namespaces; both in one element = AND;
//   - ipBlock = nets [cidr] + notNets except. As in Calico it matches any address in the
//     block, pod IPs included (Kubernetes leaves pod IPs in ipBlocks implementation-defined);
//   - port protocol defaults to TCP; endPort makes "port:endPort"; a named port resolves
//     on the destination pod (ingress: the selected pod; egress: the peer).

import type { Cidr } from './ip.js';
import { cidrContains, parseCidr } from './ip.js';
import { FieldError, joinPath } from './errors.js';
import { fromLabelSelector, type LabelSelectorSpec } from './label-selector.js';
import type { EntityRule, Policy, PortSpec, Rule } from './model.js';
import { policyId } from './model.js';
import { SCTP, TCP, UDP } from './protocols.js';
import { ALL } from './selector.js';
import { checkInt, checkPortName } from './validation.js';

export const K8S_POLICY_ORDER = 1000;

export interface K8sPeer {
  podSelector?: LabelSelectorSpec | null;
  namespaceSelector?: LabelSelectorSpec | null;
  ipBlock?: { cidr: string; except?: readonly string[] | null } | null;
}

export interface K8sPort {
  protocol?: string | null;
  port?: number | string | null;
  endPort?: number | null;
}

export interface K8sRule {
  from?: readonly K8sPeer[] | null;
  to?: readonly K8sPeer[] | null;
  ports?: readonly K8sPort[] | null;
}

export interface K8sNetworkPolicySpec {
  podSelector?: LabelSelectorSpec | null;
  policyTypes?: readonly ('Ingress' | 'Egress')[] | null;
  ingress?: readonly K8sRule[] | null;
  egress?: readonly K8sRule[] | null;
}

const K8S_PROTOCOLS: Readonly<Record<string, number>> = { TCP, UDP, SCTP };

function cidrField(text: string, path: string): Cidr {
  const c = parseCidr(text);
  if (typeof c === 'string') throw new FieldError(path, c);
  return c;
}

function peerEntity(peer: K8sPeer, path: string): EntityRule {
  const { podSelector, namespaceSelector, ipBlock } = peer;
  if (ipBlock != null) {
    if (podSelector != null || namespaceSelector != null) {
      throw new FieldError(path, 'ipBlock may not be combined with podSelector or namespaceSelector');
    }
    const bp = joinPath(path, 'ipBlock');
    const cidr = cidrField(ipBlock.cidr, joinPath(bp, 'cidr'));
    const except = (ipBlock.except ?? []).map((e, i) => {
      const ep = joinPath(joinPath(bp, 'except'), i);
      const x = cidrField(e, ep);
      if (!cidrContains(cidr, x) || x.prefix === cidr.prefix) {
        throw new FieldError(ep, `${x.text} must be a strict subset of cidr ${cidr.text}`);
      }
      return x;
    });
    return except.length > 0 ? { nets: [cidr], notNets: except } : { nets: [cidr] };
  }
  if (podSelector == null && namespaceSelector == null) {
    throw new FieldError(path, 'must specify podSelector, namespaceSelector or ipBlock');
  }
  const selector = podSelector != null ? fromLabelSelector(podSelector, joinPath(path, 'podSelector')) : ALL;
  if (namespaceSelector == null) return { selector };
  return { selector, namespaceSelector: fromLabelSelector(namespaceSelector, joinPath(path, 'namespaceSelector')) };
}

interface PortGroup {
  protocol: number;
  /** undefined = every port of the protocol. */
  ports: PortSpec[] | undefined;
}

function portGroups(ports: readonly K8sPort[], path: string): PortGroup[] {
  const groups = new Map<number, PortGroup>();
  ports.forEach((p, i) => {
    const pp = joinPath(path, i);
    const protoName = p.protocol ?? 'TCP';
    const protocol = K8S_PROTOCOLS[protoName];
    if (protocol === undefined) {
      throw new FieldError(joinPath(pp, 'protocol'), `expected one of TCP, UDP, SCTP, got ${JSON.stringify(protoName)}`);
    }
    let g = groups.get(protocol);
    if (g === undefined) groups.set(protocol, (g = { protocol, ports: [] }));
    let spec: PortSpec | undefined;
    if (p.port == null) {
      if (p.endPort != null) throw new FieldError(joinPath(pp, 'endPort'), 'may not be set without port');
    } else if (typeof p.port === 'number') {
      const from = checkInt(p.port, 1, 65535, joinPath(pp, 'port'), 'port');
      let to = from;
      if (p.endPort != null) {
        to = checkInt(p.endPort, 1, 65535, joinPath(pp, 'endPort'), 'endPort');
        if (to < from) throw new FieldError(joinPath(pp, 'endPort'), `must be greater than or equal to port (${from}), got ${to}`);
      }
      spec = { kind: 'range', from, to };
    } else {
      if (p.endPort != null) throw new FieldError(joinPath(pp, 'endPort'), 'may not be set when port is a named port');
      checkPortName(p.port, joinPath(pp, 'port'));
      spec = { kind: 'named', name: p.port };
    }
    if (spec === undefined) g.ports = undefined; // whole protocol: no port constraint
    else g.ports?.push(spec);
  });
  return [...groups.values()];
}

function expandRule(rule: K8sRule, index: number, dir: 'ingress' | 'egress', path: string): Rule[] {
  const peersKey = dir === 'ingress' ? 'from' : 'to';
  const peers = rule[peersKey] ?? [];
  const entities: EntityRule[] = peers.length > 0
    ? peers.map((p, j) => peerEntity(p, joinPath(joinPath(path, peersKey), j)))
    : [{}];
  const groups: (PortGroup | undefined)[] = rule.ports != null && rule.ports.length > 0
    ? portGroups(rule.ports, joinPath(path, 'ports'))
    : [undefined];
  const out: Rule[] = [];
  for (const peer of entities) {
    for (const g of groups) {
      const ports: EntityRule = g?.ports !== undefined ? { ports: g.ports } : {};
      out.push({
        index,
        action: 'Allow',
        ...(g !== undefined ? { protocol: g.protocol } : {}),
        source: dir === 'ingress' ? peer : {},
        destination: dir === 'ingress' ? ports : { ...peer, ...ports },
      });
    }
  }
  return out;
}

export function translateK8sPolicy(name: string, namespace: string, spec: K8sNetworkPolicySpec): Policy {
  const ingressRules = spec.ingress ?? [];
  const egressRules = spec.egress ?? [];
  let types = { ingress: true, egress: egressRules.length > 0 };
  if (spec.policyTypes != null && spec.policyTypes.length > 0) {
    types = { ingress: spec.policyTypes.includes('Ingress'), egress: spec.policyTypes.includes('Egress') };
  }
  return {
    kind: 'KubernetesNetworkPolicy',
    id: policyId('KubernetesNetworkPolicy', name, namespace),
    name,
    namespace,
    order: K8S_POLICY_ORDER,
    sortName: `knp.default.${name}`,
    selector: fromLabelSelector(spec.podSelector ?? {}, 'spec.podSelector'),
    types,
    ingress: ingressRules.flatMap((r, i) => expandRule(r, i, 'ingress', joinPath('spec.ingress', i))),
    egress: egressRules.flatMap((r, i) => expandRule(r, i, 'egress', joinPath('spec.egress', i))),
  };
}
