// Where things live in etcd.
//
//   <prefix>/config                          Flannel network config (JSON)
//   <prefix>/subnets/<ip>-<len>              a host's subnet lease (JSON), bound to an etcd lease
//   <prefix>/subnets/<ip>-<len>&<ip6>-<len6>  the same, dual-stack (Flannel's MakeSubnetKey)
//   <resources>/<group>/<Kind>/<ns>/<name>   a namespaced manifest (JSON), e.g. core/Pod/default/a
//   <resources>/<group>/<Kind>/<name>        a cluster-scoped one (Namespace, GlobalNetworkPolicy)
//
// <prefix> defaults to Flannel's /coreos.com/network so Sluice and Flannel hosts can share one etcd;
// <resources> to /sluice/resources. The group is the apiVersion's group ("core" for v1), so a
// Kubernetes and a Calico NetworkPolicy of the same name are different keys.
import { type Cidr, parseCidr } from '../cidr.js';

export const DEFAULT_PREFIX = '/coreos.com/network';
export const DEFAULT_RESOURCE_PREFIX = '/sluice/resources';

/** Kinds that live in a namespace; every other kind sluice stores is cluster-scoped. */
const NAMESPACED = new Set(['core/Pod', 'networking.k8s.io/NetworkPolicy', 'projectcalico.org/NetworkPolicy']);

export interface EtcdLayout {
  /** Flannel prefix, no trailing slash. */
  prefix: string;
  /** Sluice resource prefix, no trailing slash. */
  resourcePrefix: string;
}

/** Checks and normalises prefixes: absolute, no trailing slash, not nested in each other. */
export function makeLayout(prefix = DEFAULT_PREFIX, resourcePrefix = DEFAULT_RESOURCE_PREFIX): EtcdLayout {
  const norm = (p: string, what: string): string => {
    const t = p.replace(/\/+$/, '');
    if (!t.startsWith('/') || t.length < 2 || t.includes('//')) {
      throw new TypeError(`${what}: ${JSON.stringify(p)} is not an etcd key prefix (like /coreos.com/network)`);
    }
    return t;
  };
  const layout = { prefix: norm(prefix, 'prefix'), resourcePrefix: norm(resourcePrefix, 'resource prefix') };
  const a = `${layout.prefix}/`;
  const b = `${layout.resourcePrefix}/`;
  if (a.startsWith(b) || b.startsWith(a)) {
    throw new TypeError(`prefix ${layout.prefix} and resource prefix ${layout.resourcePrefix} must not contain each other`);
  }
  return layout;
}

export const configKey = (l: EtcdLayout): string => `${l.prefix}/config`;
export const subnetsPrefix = (l: EtcdLayout): string => `${l.prefix}/subnets/`;
export const resourcesPrefix = (l: EtcdLayout): string => `${l.resourcePrefix}/`;

/** The end of the key range holding every key that starts with `prefix` (etcd's prefix range). */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) {
      const end = b.subarray(0, i + 1);
      end[i]++;
      return Buffer.from(end);
    }
  }
  return Buffer.from([0]);
}

/** `10.244.1.0/24` (+ `fd00::/64`) → `<prefix>/subnets/10.244.1.0-24[&fd00::-64]`. */
export function subnetKey(l: EtcdLayout, subnet: string, ipv6Subnet?: string): string {
  const part = (c: string) => c.replace('/', '-');
  return `${subnetsPrefix(l)}${part(subnet)}${ipv6Subnet === undefined ? '' : `&${part(ipv6Subnet)}`}`;
}

export interface SubnetKey {
  subnet: Cidr;
  ipv6Subnet?: Cidr;
}

/** Parses the part of a lease key after `subnets/`; an error message when it is not a subnet key. */
export function parseSubnetKey(name: string): SubnetKey | string {
  const [v4, v6, extra] = name.split('&');
  const cidr = (text: string, family: 4 | 6): Cidr | string => {
    const dash = text.lastIndexOf('-');
    if (dash < 0) return `${JSON.stringify(name)} is not a subnet key (like 10.244.1.0-24)`;
    return parseCidr(`${text.slice(0, dash)}/${text.slice(dash + 1)}`, family);
  };
  if (extra !== undefined) return `${JSON.stringify(name)} is not a subnet key (like 10.244.1.0-24)`;
  const subnet = cidr(v4, 4);
  if (typeof subnet === 'string') return subnet;
  if (v6 === undefined) return { subnet };
  const ipv6Subnet = cidr(v6, 6);
  if (typeof ipv6Subnet === 'string') return ipv6Subnet;
  return { subnet, ipv6Subnet };
}

/** Identity of a manifest: what its key is made of. */
export interface ResourceId {
  group: string;
  kind: string;
  namespace?: string;
  name: string;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads apiVersion/kind/metadata of a manifest; an error message when they are missing or unusable in a key. */
export function resourceId(manifest: unknown): ResourceId | string {
  if (!isMap(manifest)) return 'expected a Kubernetes object (a mapping)';
  const { apiVersion, kind, metadata } = manifest;
  if (typeof apiVersion !== 'string' || apiVersion === '') return 'apiVersion: expected a string';
  if (typeof kind !== 'string' || !/^[A-Za-z][A-Za-z0-9]*$/.test(kind)) return 'kind: expected a kind name';
  if (!isMap(metadata)) return 'metadata: expected a mapping with a name';
  const segment = (v: unknown): string | undefined =>
    typeof v === 'string' && v !== '' && !v.includes('/') && v !== '.' && v !== '..' ? v : undefined;
  const name = segment(metadata.name);
  if (name === undefined) return 'metadata.name: expected a name without "/"';
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? 'core' : apiVersion.slice(0, slash);
  if (!NAMESPACED.has(`${group}/${kind}`)) return { group, kind, name };
  if (metadata.namespace === undefined || metadata.namespace === null) return { group, kind, namespace: 'default', name };
  const namespace = segment(metadata.namespace);
  if (namespace === undefined) return 'metadata.namespace: expected a name without "/"';
  return { group, kind, namespace, name };
}

export function resourceKey(l: EtcdLayout, id: ResourceId): string {
  const ns = id.namespace === undefined ? '' : `${id.namespace}/`;
  return `${resourcesPrefix(l)}${id.group}/${id.kind}/${ns}${id.name}`;
}

/** `Pod default/a`, `GlobalNetworkPolicy deny-all`: how the CLI names a resource. */
export function describeResource(id: ResourceId): string {
  const kind = id.group === 'core' ? id.kind : `${id.kind}.${id.group}`;
  return `${kind} ${id.namespace === undefined ? '' : `${id.namespace}/`}${id.name}`;
}
