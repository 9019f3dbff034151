// Listing → StoreSnapshot: the etcd store's validation. The listing is turned into the cluster
// file's shapes and checked by the same code (checkNetwork, checkHosts, deriveEndpoints), and the
// manifests by the policy layer, so a state is accepted or refused by the same rules in both stores.
//
// Issue paths are those of the cluster file (network.SubnetLen, hosts[1].subnet,
// manifests[3].spec.ingress[0]); hosts and manifests are numbered in key order, and each message ends
// with the etcd key to fix.
//
// One difference from the file store, because hosts come and go with their leases here: a Pod
// scheduled on a host that has no lease (yet, or any more) is not an endpoint, rather than an error.
import { ManifestError } from '../../policy/errors.js';
import { buildResourceSet } from '../../policy/manifests.js';
import type { RawHost } from '../config-schema.js';
import { deriveEndpoints } from '../endpoints.js';
import { StoreError, type StoreIssue } from '../errors.js';
import type { EndpointRecord, StoreSnapshot } from '../store.js';
import { type ParsedHost, checkHosts } from '../validate.js';
import type { Listing } from './client.js';
import { type EtcdNetwork, parseEtcdConfig } from './config.js';
import { type EtcdLayout, configKey, parseSubnetKey, resourceId, resourceKey, subnetsPrefix } from './keys.js';
import { parseLeaseValue } from './lease-record.js';

export interface EtcdState {
  snapshot: StoreSnapshot;
  network: EtcdNetwork;
  hosts: ParsedHost[];
}

type DeriveInput = Parameters<typeof deriveEndpoints>[0][number];

/** Appends `(key K)` to the issues from index `from` on, renumbering `what[j]` to `what[index[j]]`. */
function locate(issues: StoreIssue[], from: number, what: 'hosts' | 'manifests', index: readonly number[], keys: readonly string[]): void {
  const re = new RegExp(`^${what}\\[(\\d+)\\]`);
  for (let n = from; n < issues.length; n++) {
    const m = re.exec(issues[n].path);
    if (m === null) continue;
    const i = index[Number(m[1])];
    issues[n] = { path: `${what}[${i}]${issues[n].path.slice(m[0].length)}`, message: `${issues[n].message} (key ${keys[i]})` };
  }
}

interface Hosts {
  network: EtcdNetwork;
  hosts: ParsedHost[];
}

interface Resources {
  manifests: unknown[];
  /** Key-order index of each manifest (for issue paths). */
  index: number[];
  keys: string[];
}

/** Network config and leases; null when the config is missing or invalid (issues say why). */
function checkCluster(l: Listing, layout: EtcdLayout, issues: StoreIssue[]): Hosts | null {
  const cfgKey = configKey(layout);
  if (l.config === undefined) {
    issues.push({
      path: '',
      message: `no network config at ${cfgKey}; write Flannel's JSON there, e.g. {"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}`,
    });
    return null;
  }
  const fromCfg = issues.length;
  const network = parseEtcdConfig(l.config.value, issues);
  if (network === null) {
    for (let n = fromCfg; n < issues.length; n++) issues[n] = { ...issues[n], message: `${issues[n].message} (key ${cfgKey})` };
    return null;
  }

  const hostKeys = l.subnets.map((kv) => kv.key);
  const identity = hostKeys.map((_, j) => j);
  const rawHosts: RawHost[] = [];
  const rawIndex: number[] = [];
  l.subnets.forEach((kv, i) => {
    const from = issues.length;
    const at = `hosts[${i}]`;
    const sk = parseSubnetKey(kv.key.slice(subnetsPrefix(layout).length));
    if (typeof sk === 'string') issues.push({ path: `${at}.subnet`, message: sk });
    const h = parseLeaseValue(kv.value, at, network.config.backend, issues);
    if (typeof sk !== 'string' && h !== null) {
      const raw: RawHost = { ...h, subnet: sk.subnet.text };
      if (sk.ipv6Subnet !== undefined) raw.ipv6Subnet = sk.ipv6Subnet.text;
      rawHosts.push(raw);
      rawIndex.push(i);
    }
    locate(issues, from, 'hosts', identity, hostKeys);
  });
  const fromHosts = issues.length;
  const hosts = checkHosts(rawHosts, network, issues);
  locate(issues, fromHosts, 'hosts', rawIndex, hostKeys);
  for (const h of hosts) h.index = rawIndex[h.index];
  return { network, hosts };
}

/** Manifests: each stored under the key its identity gives, and valid for the policy layer. */
function checkResources(l: Listing, layout: EtcdLayout, issues: StoreIssue[]): Resources {
  const keys = l.resources.map((kv) => kv.key);
  const manifests: unknown[] = [];
  const index: number[] = [];
  const from = issues.length;
  l.resources.forEach((kv, i) => {
    let m: unknown;
    try {
      m = JSON.parse(kv.value);
    } catch (e) {
      issues.push({ path: `manifests[${i}]`, message: `not valid JSON: ${(e as Error).message}` });
      return;
    }
    const id = resourceId(m);
    if (typeof id === 'string') {
      issues.push({ path: `manifests[${i}]`, message: id });
      return;
    }
    const want = resourceKey(layout, id);
    if (want !== kv.key) {
      issues.push({ path: `manifests[${i}].metadata`, message: `the manifest belongs under ${want}, not here` });
      return;
    }
    manifests.push(m);
    index.push(i);
  });
  locate(issues, from, 'manifests', keys.map((_, j) => j), keys);
  const fromPolicy = issues.length;
  try {
    buildResourceSet(manifests.map((value, j) => ({ source: String(j), doc: 1, value })));
  } catch (e) {
    if (!(e instanceof ManifestError)) throw e;
    for (const mi of e.issues) {
      const tail = mi.path === '' ? '' : mi.path.startsWith('[') ? mi.path : `.${mi.path}`;
      issues.push({ path: `manifests[${mi.source}]${tail}`, message: mi.message });
    }
  }
  locate(issues, fromPolicy, 'manifests', index, keys);
  return { manifests, index, keys };
}

/** Endpoints: pods on hosts that hold a lease right now. */
function checkEndpoints(r: Resources, hosts: readonly ParsedHost[], issues: StoreIssue[]): EndpointRecord[] {
  const hostNames = new Set(hosts.map((h) => h.record.name));
  const pods: DeriveInput[] = [];
  const podIndex: number[] = [];
  r.manifests.forEach((m, j) => {
    const nodeName = (m as { spec?: { nodeName?: unknown } }).spec?.nodeName;
    if (typeof nodeName === 'string' && !hostNames.has(nodeName)) return;
    pods.push(m as DeriveInput);
    podIndex.push(r.index[j]);
  });
  const from = issues.length;
  const endpoints = deriveEndpoints(pods, hosts, issues);
  locate(issues, from, 'manifests', podIndex, r.keys);
  return endpoints;
}

/** Validates a listing; throws StoreError naming every problem (and its key). */
export function buildState(l: Listing, layout: EtcdLayout, source: string): EtcdState {
  const issues: StoreIssue[] = [];
  const cluster = checkCluster(l, layout, issues);
  if (cluster === null) throw new StoreError('STORE_INVALID', source, issues);
  const resources = checkResources(l, layout, issues);
  if (issues.length > 0) throw new StoreError('STORE_INVALID', source, issues);
  const endpoints = checkEndpoints(resources, cluster.hosts, issues);
  if (issues.length > 0) throw new StoreError('STORE_INVALID', source, issues);
  const snapshot: StoreSnapshot = { config: cluster.network.config, hosts: cluster.hosts.map((h) => h.record), endpoints, manifests: resources.manifests };
  return { snapshot, network: cluster.network, hosts: cluster.hosts };
}

/**
 * What `sluice apply` checks before writing: the resources as they would be, strictly, and their
 * endpoints against the hosts when the network config and leases are themselves valid (a broken
 * lease elsewhere should not block a policy change). Throws StoreError.
 */
export function checkResourcesToWrite(l: Listing, layout: EtcdLayout, source: string): void {
  const issues: StoreIssue[] = [];
  const resources = checkResources(l, layout, issues);
  if (issues.length > 0) throw new StoreError('STORE_INVALID', source, issues);
  const clusterIssues: StoreIssue[] = [];
  const cluster = checkCluster(l, layout, clusterIssues);
  if (cluster === null || clusterIssues.length > 0) return;
  checkEndpoints(resources, cluster.hosts, issues);
  if (issues.length > 0) throw new StoreError('STORE_INVALID', source, issues);
}
