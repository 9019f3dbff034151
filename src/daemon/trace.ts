// `sluice trace`: which policy and rule decide a flow, and the route its packets
// take — computed from the daemon's current state with the data path's own
// evaluator and the cluster's host subnets.
import { evaluate, type Verdict } from '../policy/evaluator.js';
import { canonicalIP, cidrHas, familyOf, parseCidr, parseIPInto } from '../policy/ip.js';
import { parseProtocol } from '../policy/protocols.js';
import { podIPs, type ResourceSet } from '../policy/model.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { StoreSnapshot } from '../store/store.js';

export interface TraceQuery { from: string; to: string; protocol: string; port: number }

export interface TraceResult {
  from: { address: string; pod?: string; host?: string };
  to: { address: string; pod?: string; host?: string };
  protocol: string;
  port: number;
  verdict: Verdict;
  route: string[];
}

/** Resolves "ns/pod" to its IP (and host), or takes an IP as it is; throws naming the unknown side. */
function resolve(side: 'from' | 'to', text: string, resources: ResourceSet, store: StoreSnapshot) {
  if (text.includes('/')) {
    const [ns, name] = text.split('/', 2);
    const pod = resources.pods.find((p) => p.namespace === ns && p.name === name);
    const ep = store.endpoints.find((e) => e.namespace === ns && e.name === name);
    const address = ep?.ip ?? (pod ? podIPs(pod)[0] : undefined);
    if (!pod || !address) throw new Error(`--${side} ${text}: no such pod with an address`);
    return { address, pod: text, host: ep?.host ?? pod.nodeName };
  }
  const address = canonicalIP(text);
  if (!address) throw new Error(`--${side} ${text}: expected NAMESPACE/POD or an IP address`);
  const ep = store.endpoints.find((e) => e.ip === address || e.ipv6 === address);
  return { address, pod: ep ? `${ep.namespace}/${ep.name}` : undefined, host: ep?.host ?? hostOf(address, store) };
}

function hostOf(address: string, store: StoreSnapshot): string | undefined {
  const fam = familyOf(address);
  if (!fam) return undefined;
  const words = new Uint32Array(4);
  parseIPInto(address, words);
  for (const h of store.hosts) {
    for (const cidr of [h.subnet, h.ipv6Subnet]) {
      if (!cidr) continue;
      const c = parseCidr(cidr);
      if (typeof c !== 'string' && cidrHas(c, fam, words)) return h.name;
    }
  }
  return undefined;
}

export function trace(q: TraceQuery, policy: PolicySnapshot, resources: ResourceSet, store: StoreSnapshot): TraceResult {
  const protocol = parseProtocol(q.protocol);
  if (protocol === undefined) throw new Error(`--protocol ${q.protocol}: expected TCP, UDP, SCTP, ICMP or a number`);
  const from = resolve('from', q.from, resources, store);
  const to = resolve('to', q.to, resources, store);
  const verdict = evaluate(policy, { src: from.address, dst: to.address, protocol, srcPort: 40000, dstPort: q.port });
  const backend = store.config.backend;
  const route: string[] = [];
  const src = store.hosts.find((h) => h.name === from.host);
  const dst = store.hosts.find((h) => h.name === to.host);
  route.push(from.pod ? `${from.pod} (${from.address}) → TUN of host ${from.host}` : `${from.address} (not a pod)`);
  if (!to.host || !dst) {
    route.push(`no host's subnet holds ${to.address}: ICMP host unreachable back to the sender`);
  } else if (src && src.name === dst.name) {
    route.push(`switched by the daemon of ${src.name}`);
  } else {
    route.push(`${backend.type} overlay (VNI ${backend.vni}): ${src?.publicIP ?? '?'} → ${dst.publicIP}:${dst.port ?? backend.port} (host ${dst.name})`);
  }
  if (dst) route.push(to.pod ? `TUN of ${to.pod} (${to.address}) on ${dst.name}` : `${to.address}: no endpoint on ${dst.name}, ICMP host unreachable`);
  route.push(verdict.allowed ? 'verdict: allowed' : `verdict: denied (${!verdict.egress.allowed ? 'egress' : 'ingress'})`);
  return { from, to, protocol: q.protocol.toUpperCase(), port: q.port, verdict, route };
}
