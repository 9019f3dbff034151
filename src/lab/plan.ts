// Planning a lab is pure: from the options and the manifests, decide every host, pod, address and
// namespace name, and the cluster file. Nothing is created here, so this is testable without root.
import { addressAt, networkSize, parseCidr, type Cidr } from '../store/cidr.js';
import type { ClusterFileContent } from '../store/cluster-file.js';
import { NETNS_ANNOTATION } from '../store/endpoints.js';
import type { HostRecord, NetworkConfig } from '../store/store.js';
import { DEFAULT_PORTS, DEFAULT_VNI } from '../store/validate.js';
import { LabError } from './errors.js';
import type { SourcedDoc } from './manifests.js';
import { hostName, hostNetns, podNetns, underlayNetns } from './names.js';
import type { LabHost, LabPod } from './state.js';

export const LAB_NETWORK = '10.244.0.0/16';
export const LAB_IPV6_NETWORK = 'fd00:10:244::/56';
export const DEFAULT_UNDERLAY = '10.99.0.0/24';
export const MAX_HOSTS = 254;
/** Kubernetes sets this label on every namespace; policies select namespaces by it. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export interface PlanOptions {
  name: string;
  hosts: number;
  backend: 'vxlan' | 'udp';
  ipv6: boolean;
  /** Manifests from -f; undefined means the demo workloads. */
  docs?: readonly SourcedDoc[];
  /** Underlay network; host i gets its i-th address. */
  underlay?: string;
  /** 'etcd': keep the underlay's last address for the lab's etcd (etcdIP). */
  store?: 'file' | 'etcd';
}

export interface LabPlan {
  underlayNetns: string;
  underlayPrefix: number;
  /** store 'etcd': where the lab's own etcd listens, the underlay's last usable address. */
  etcdIP?: string;
  hosts: LabHost[];
  pods: LabPod[];
  cluster: ClusterFileContent;
}

const hex = (n: number): string => n.toString(16);
type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined);

export function planLab(o: PlanOptions): LabPlan {
  if (!Number.isInteger(o.hosts) || o.hosts < 1 || o.hosts > MAX_HOSTS) {
    throw new LabError(`--hosts must be an integer from 1 to ${MAX_HOSTS}, got ${o.hosts}`);
  }
  const underlay = parseCidr(o.underlay ?? DEFAULT_UNDERLAY, 4);
  if (typeof underlay === 'string') throw new LabError(`underlay: ${underlay}`);
  const reserved = o.store === 'etcd' ? 1 : 0;
  if (networkSize(underlay) - 2 - reserved < o.hosts) {
    throw new LabError(`underlay ${underlay.text} has room for fewer than ${o.hosts} hosts${reserved > 0 ? ' (its last address is for etcd)' : ''}`);
  }

  const hosts: LabHost[] = [];
  const subnets: Cidr[] = [];
  const subnets6: Cidr[] = [];
  for (let i = 1; i <= o.hosts; i++) {
    const subnet = parseCidr(`10.244.${i}.0/24`, 4) as Cidr;
    const h: LabHost = {
      name: hostName(i),
      netns: hostNetns(o.name, i),
      underlayIP: addressAt(underlay, i).text,
      subnet: subnet.text,
      vtepMAC: `02:00:0a:f4:${hex(i).padStart(2, '0')}:00`,
    };
    subnets.push(subnet);
    if (o.ipv6) {
      const s6 = parseCidr(`fd00:10:244:${hex(i)}::/64`, 6) as Cidr;
      h.ipv6Subnet = s6.text;
      subnets6.push(s6);
    }
    hosts.push(h);
  }

  const docs = o.docs ?? demoDocs(o.hosts);
  const nsDocs = new Map<string, Obj>();
  const podIds = new Map<string, string>();
  const taken = new Set<string>();
  const nextOffset = hosts.map(() => 2); // pods from .2 (.0 network, .1 left for the host side)
  let roundRobin = 0;
  const pods: LabPod[] = [];
  const manifests: Obj[] = [];

  for (const { doc, where } of docs) {
    const meta = asObj(doc.metadata) ?? {};
    if (doc.kind === 'Namespace' && doc.apiVersion === 'v1') {
      const copy = structuredClone(doc);
      const m = asObj(copy.metadata) as Obj;
      m.labels = { ...(asObj(m.labels) ?? {}), [NAMESPACE_NAME_LABEL]: String(meta.name) };
      nsDocs.set(String(meta.name), copy);
      manifests.push(copy);
      continue;
    }
    if (doc.kind !== 'Pod' || doc.apiVersion !== 'v1') {
      manifests.push(doc); // policies and the rest, unchanged
      continue;
    }
    const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default';
    const name = String(meta.name);
    const id = `${namespace}/${name}`;
    const prev = podIds.get(id);
    if (prev !== undefined) throw new LabError(`${where}: pod ${id} is defined twice (also ${prev})`);
    podIds.set(id, where);

    const spec = asObj(doc.spec) ?? {};
    let hi: number;
    if (spec.nodeName === undefined) {
      hi = roundRobin++ % hosts.length;
    } else {
      hi = hosts.findIndex((h) => h.name === spec.nodeName);
      if (hi < 0) {
        throw new LabError(`${where}: pod ${id}: spec.nodeName ${JSON.stringify(spec.nodeName)} is not a lab host (${hosts[0].name}..${hosts[hosts.length - 1].name})`);
      }
    }
    const host = hosts[hi];
    const offset = nextOffset[hi]++;
    if (offset >= networkSize(subnets[hi]) - 1) throw new LabError(`${where}: host ${host.name} has no address left in ${host.subnet} for pod ${id}`);
    const pod: LabPod = { namespace, name, host: host.name, netns: podNetns(o.name, namespace, name, taken), ip: addressAt(subnets[hi], offset).text };
    if (o.ipv6) pod.ipv6 = addressAt(subnets6[hi], offset).text;
    pods.push(pod);

    // The Pod as a CNI plugin would leave it: scheduled, addressed, and pointing at its netns.
    const copy = structuredClone(doc);
    const m = asObj(copy.metadata) as Obj;
    m.namespace = namespace;
    m.annotations = { ...(asObj(m.annotations) ?? {}), [NETNS_ANNOTATION]: pod.netns };
    copy.spec = { ...spec, nodeName: host.name };
    const podIPs = [{ ip: pod.ip }];
    if (pod.ipv6 !== undefined) podIPs.push({ ip: pod.ipv6 });
    copy.status = { ...(asObj(doc.status) ?? {}), phase: 'Running', podIP: pod.ip, podIPs };
    manifests.push(copy);
  }

  // Namespaces that pods use but no document declares, as the API server would have them.
  const missing = [...new Set(pods.map((p) => p.namespace))].filter((n) => !nsDocs.has(n));
  const created = missing.map((n) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: n, labels: { [NAMESPACE_NAME_LABEL]: n } } }));

  const config: NetworkConfig = {
    network: LAB_NETWORK,
    subnetLen: 24,
    backend: { type: o.backend, port: DEFAULT_PORTS[o.backend], vni: DEFAULT_VNI },
  };
  if (o.ipv6) {
    config.ipv6Network = LAB_IPV6_NETWORK;
    config.ipv6SubnetLen = 64;
  }
  const hostRecords: HostRecord[] = hosts.map((h) => {
    const r: HostRecord = { name: h.name, publicIP: h.underlayIP, subnet: h.subnet, vtepMAC: h.vtepMAC };
    if (h.ipv6Subnet !== undefined) r.ipv6Subnet = h.ipv6Subnet;
    return r;
  });
  return {
    underlayNetns: underlayNetns(o.name),
    underlayPrefix: underlay.prefix,
    ...(o.store === 'etcd' ? { etcdIP: addressAt(underlay, networkSize(underlay) - 2).text } : {}),
    hosts,
    pods,
    cluster: { config, hosts: hostRecords, manifests: [...created, ...manifests] },
  };
}

/** Two pods per host in namespace `demo`, labelled app=demo. */
export function demoDocs(hosts: number): SourcedDoc[] {
  const out: SourcedDoc[] = [{ where: 'demo', doc: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } } }];
  for (let i = 1; i <= hosts; i++) {
    for (const s of ['a', 'b']) {
      out.push({
        where: 'demo',
        doc: { apiVersion: 'v1', kind: 'Pod', metadata: { name: `h${i}-${s}`, namespace: 'demo', labels: { app: 'demo' } }, spec: { nodeName: `h${i}` } },
      });
    }
  }
  return out;
}
