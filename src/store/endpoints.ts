// Workload endpoints derived from Pod manifests, the way a CNI plugin would have recorded them:
// a Pod that is scheduled (spec.nodeName) and has an address (status.podIP / podIPs) is an endpoint
// of its node. Pending pods (no address yet) are not endpoints and are not errors.
import { cidrContains, lastAddress, parseAnyIp, sameIp } from './cidr.js';
import type { StoreIssue } from './errors.js';
import type { EndpointRecord } from './store.js';
import type { ParsedHost } from './validate.js';

export const NETNS_ANNOTATION = 'sluice.io/netns';
export const IFNAME_ANNOTATION = 'sluice.io/interface';
export const DEFAULT_IFNAME = 'eth0';

// Names of files under /run/netns; the same charset the lab uses.
const NETNS_NAME = /^[A-Za-z0-9_.-]{1,255}$/;
// Linux IFNAMSIZ is 16 including the NUL.
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

interface PodLike {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: unknown;
  status?: unknown;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function deriveEndpoints(manifests: readonly PodLike[], hosts: readonly ParsedHost[], issues: StoreIssue[]): EndpointRecord[] {
  const byName = new Map(hosts.map((h) => [h.record.name, h]));
  const ipOwner = new Map<string, string>();
  const podSeen = new Map<string, number>();
  const ifSeen = new Map<string, string>();
  const out: EndpointRecord[] = [];

  manifests.forEach((m, i) => {
    if (m.kind !== 'Pod' || m.apiVersion !== 'v1') return;
    const at = (field: string) => `manifests[${i}].${field}`;
    const namespace = m.metadata.namespace ?? 'default';
    const id = `${namespace}/${m.metadata.name}`;
    const prevPod = podSeen.get(id);
    if (prevPod !== undefined) {
      issues.push({ path: at('metadata.name'), message: `duplicate Pod ${id} (also manifests[${prevPod}])` });
      return;
    }
    podSeen.set(id, i);

    const spec = m.spec;
    if (spec !== undefined && !isMap(spec)) {
      issues.push({ path: at('spec'), message: 'expected a mapping' });
      return;
    }
    const nodeName = spec?.nodeName;
    if (nodeName === undefined) return; // not scheduled
    if (typeof nodeName !== 'string') {
      issues.push({ path: at('spec.nodeName'), message: 'expected a host name (a string)' });
      return;
    }

    const ips = podAddresses(m.status, at, issues);
    if (ips === null || ips.length === 0) return; // malformed (reported) or pending
    const v4 = ips.find((a) => a.ip.family === 4);
    const v6 = ips.find((a) => a.ip.family === 6);
    if (v4 === undefined) {
      issues.push({ path: at('status.podIP'), message: `pod ${id} has no IPv4 address; Sluice endpoints need one` });
      return;
    }

    const host = byName.get(nodeName);
    if (host === undefined) {
      issues.push({ path: at('spec.nodeName'), message: `${JSON.stringify(nodeName)} is not one of the hosts (${[...byName.keys()].join(', ') || 'none'})` });
      return;
    }
    const bad = issues.length;
    if (!cidrContains(host.subnet, v4.ip)) {
      issues.push({ path: at(v4.path), message: `${v4.ip.text} is not inside ${host.record.name}'s subnet ${host.subnet.text}` });
    } else if (sameIp(v4.ip, host.subnet) || sameIp(v4.ip, lastAddress(host.subnet))) {
      issues.push({ path: at(v4.path), message: `${v4.ip.text} is the network or broadcast address of ${host.subnet.text}` });
    }
    if (v6 !== undefined) {
      if (host.ipv6Subnet === undefined) {
        issues.push({ path: at(v6.path), message: `${v6.ip.text} given but host ${host.record.name} has no ipv6Subnet` });
      } else if (!cidrContains(host.ipv6Subnet, v6.ip)) {
        issues.push({ path: at(v6.path), message: `${v6.ip.text} is not inside ${host.record.name}'s ipv6Subnet ${host.ipv6Subnet.text}` });
      }
    }
    for (const a of v6 === undefined ? [v4] : [v4, v6]) {
      const owner = ipOwner.get(a.ip.text);
      if (owner !== undefined) issues.push({ path: at(a.path), message: `${a.ip.text} is already the address of pod ${owner}` });
      else ipOwner.set(a.ip.text, id);
    }

    const annotations = m.metadata.annotations ?? {};
    const netns = annotations[NETNS_ANNOTATION];
    if (netns !== undefined && (!NETNS_NAME.test(netns) || netns === '.' || netns === '..')) {
      issues.push({ path: at(`metadata.annotations["${NETNS_ANNOTATION}"]`), message: `${JSON.stringify(netns)} is not a network namespace name` });
    }
    const ifname = annotations[IFNAME_ANNOTATION] ?? DEFAULT_IFNAME;
    if (!IFNAME.test(ifname) || ifname === '.' || ifname === '..') {
      issues.push({ path: at(`metadata.annotations["${IFNAME_ANNOTATION}"]`), message: `${JSON.stringify(ifname)} is not an interface name (1-15 of letters, digits, "_", ".", "-")` });
    } else {
      // Two endpoints cannot share an interface name in one namespace.
      const key = `${host.record.name}|${netns ?? ''}|${ifname}`;
      const other = ifSeen.get(key);
      if (other !== undefined) {
        issues.push({ path: at(`metadata.annotations["${IFNAME_ANNOTATION}"]`), message: `interface ${ifname} in ${netns === undefined ? `the daemon's namespace on ${host.record.name}` : `netns ${netns}`} is already used by pod ${other}` });
      } else ifSeen.set(key, id);
    }
    if (issues.length > bad) return;

    const ep: EndpointRecord = {
      namespace,
      name: m.metadata.name,
      host: host.record.name,
      ip: v4.ip.text,
      ifname,
      labels: { ...(m.metadata.labels ?? {}) },
    };
    if (v6 !== undefined) ep.ipv6 = v6.ip.text;
    if (netns !== undefined) ep.netns = netns;
    out.push(ep);
  });
  return out;
}

interface PodAddress {
  ip: NonNullable<ReturnType<typeof parseAnyIp>>;
  /** Field path relative to the manifest, for messages. */
  path: string;
}

/** status.podIP first, then status.podIPs[].ip; null when something there is malformed. */
function podAddresses(status: unknown, at: (f: string) => string, issues: StoreIssue[]): PodAddress[] | null {
  if (status === undefined) return [];
  if (!isMap(status)) {
    issues.push({ path: at('status'), message: 'expected a mapping' });
    return null;
  }
  const out: PodAddress[] = [];
  const add = (v: unknown, path: string): boolean => {
    const ip = typeof v === 'string' ? parseAnyIp(v) : null;
    if (ip === null) {
      issues.push({ path: at(path), message: `${JSON.stringify(v)} is not an IP address` });
      return false;
    }
    if (!out.some((a) => sameIp(a.ip, ip))) out.push({ ip, path });
    return true;
  };
  if (status.podIP !== undefined && !add(status.podIP, 'status.podIP')) return null;
  if (status.podIPs !== undefined) {
    if (!Array.isArray(status.podIPs)) {
      issues.push({ path: at('status.podIPs'), message: 'expected a list of {ip: ...}' });
      return null;
    }
    for (let j = 0; j < status.podIPs.length; j++) {
      const e: unknown = status.podIPs[j];
      if (!isMap(e)) {
        issues.push({ path: at(`status.podIPs[${j}]`), message: 'expected a mapping {ip: ...}' });
        return null;
      }
      if (!add(e.ip, `status.podIPs[${j}].ip`)) return null;
    }
  }
  return out;
}
