// An etcd lab's hosts choose their own subnets (subnet leases, Flannel's way), so the plan's
// subnets (10.244.<i>.0/24) are only placeholders there. Once every daemon holds its lease, the
// plan is re-addressed: each host takes its leased subnet (and the VTEP MAC its lease publishes),
// and each pod keeps its offset in its host's subnet (.2, .3, ...) in the new one. Pure, like the
// plan itself.
import { addressAt, parseCidr, parseIp, type Cidr } from '../store/cidr.js';
import type { HostRecord } from '../store/store.js';
import { LabError } from './errors.js';
import type { LabPlan } from './plan.js';
import type { LabHost, LabPod } from './state.js';

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined);

export interface Readdressed {
  hosts: LabHost[];
  pods: LabPod[];
  /** The plan's manifests with every Pod's status.podIP/podIPs in its host's leased subnet. */
  manifests: unknown[];
}

/** `leases`: the hosts etcd holds (a daemon's lease names it by SluiceHost and PublicIP). */
export function readdress(plan: LabPlan, leases: readonly HostRecord[]): Readdressed {
  const hosts = plan.hosts.map((h): LabHost => {
    const lease = leases.find((l) => l.name === h.name);
    if (lease === undefined) {
      throw new LabError(`host ${h.name} holds no subnet lease in etcd (leases: ${leases.map((l) => `${l.name} ${l.subnet}`).join(', ') || 'none'})`);
    }
    if (lease.publicIP !== h.underlayIP) {
      throw new LabError(`the lease named ${h.name} (${lease.subnet}) belongs to ${lease.publicIP}, not to this lab's ${h.name} (${h.underlayIP}); is this etcd shared with another lab?`);
    }
    if (plan.hosts.some((o) => o.ipv6Subnet !== undefined) && lease.ipv6Subnet === undefined) {
      throw new LabError(`host ${h.name}: its lease ${lease.subnet} has no IPv6 subnet, but the lab has IPv6`);
    }
    const out: LabHost = { ...h, subnet: lease.subnet, vtepMAC: lease.vtepMAC };
    if (h.ipv6Subnet !== undefined) out.ipv6Subnet = lease.ipv6Subnet;
    return out;
  });

  const cidr = (text: string): Cidr => parseCidr(text, text.includes(':') ? 6 : 4) as Cidr;
  const byName = new Map(plan.hosts.map((h, i) => [h.name, i]));
  const pods = plan.pods.map((p): LabPod => {
    const i = byName.get(p.host) as number;
    const offset = offsetIn(cidr(plan.hosts[i].subnet), p.ip);
    const out: LabPod = { ...p, ip: addressAt(cidr(hosts[i].subnet), offset).text };
    if (p.ipv6 !== undefined) out.ipv6 = addressAt(cidr(hosts[i].ipv6Subnet as string), offset).text;
    return out;
  });

  const manifests = plan.cluster.manifests.map((m) => {
    const doc = asObj(m);
    const meta = asObj(doc?.metadata);
    if (doc === undefined || doc.kind !== 'Pod' || doc.apiVersion !== 'v1' || meta === undefined) return m;
    const pod = pods.find((p) => p.namespace === meta.namespace && p.name === meta.name);
    if (pod === undefined) return m;
    const podIPs = [{ ip: pod.ip }];
    if (pod.ipv6 !== undefined) podIPs.push({ ip: pod.ipv6 });
    return { ...doc, status: { ...(asObj(doc.status) ?? {}), podIP: pod.ip, podIPs } };
  });
  return { hosts, pods, manifests };
}

/** How far `ip` is from the start of the IPv4 network `net`. */
function offsetIn(net: Cidr, ip: string): number {
  const a = parseIp(ip, 4);
  if (a === null) throw new LabError(`pod address ${ip} is not IPv4`);
  const n = (b: number[]): number => ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
  return n(a.bytes) - n(net.bytes);
}
