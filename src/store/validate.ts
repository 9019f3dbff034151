// Semantic validation of a structurally valid cluster document (phase 2): parses CIDRs and
// addresses, applies Flannel's defaults and rules, and checks that hosts fit the network and do not
// collide. Produces the normalised NetworkConfig and HostRecords, or issues naming each bad field.
import { type Cidr, cidrContains, parseCidr, parseIp } from './cidr.js';
import type { RawClusterDoc, RawHost, RawNetwork } from './config-schema.js';
import type { StoreIssue } from './errors.js';
import type { HostRecord, NetworkConfig } from './store.js';

export const DEFAULT_PORTS = { vxlan: 8472, udp: 8285 } as const;
export const DEFAULT_VNI = 1;
/** Outer headers added by each backend: IPv4 20 + UDP 8 (+ VXLAN 8 + inner Ethernet 14). */
export const ENCAP_OVERHEAD = { vxlan: 50, udp: 28 } as const;
const IPV6_MIN_MTU = 1280;

/** Parsed networks kept beside the records so later checks (endpoints) need not re-parse. */
export interface ParsedNetwork {
  config: NetworkConfig;
  network: Cidr;
  ipv6Network?: Cidr;
}

export interface ParsedHost {
  record: HostRecord;
  subnet: Cidr;
  ipv6Subnet?: Cidr;
  /** Index in the file's `hosts` list, for error paths. */
  index: number;
}

/** Flannel's network config rules (pkg/subnet/config.go), with our backend defaults. */
export function checkNetwork(raw: RawNetwork, issues: StoreIssue[]): ParsedNetwork | null {
  const at = (field: string) => `network.${field}`;
  const bad = issues.length;

  const network = parseCidr(raw.Network, 4);
  let subnetLen = raw.SubnetLen ?? 0;
  if (typeof network === 'string') {
    issues.push({ path: at('Network'), message: network });
  } else if (raw.SubnetLen === undefined) {
    // Flannel: /24 per host when the network is /22 or larger, else four subnets; below /28 is useless.
    if (network.prefix > 28) {
      issues.push({ path: at('Network'), message: `${network.text} is too small; the smallest useful network is a /28` });
    }
    subnetLen = network.prefix <= 22 ? 24 : network.prefix + 2;
  } else if (raw.SubnetLen > 30) {
    issues.push({ path: at('SubnetLen'), message: `${raw.SubnetLen} is too long; SubnetLen must be at most 30` });
  } else if (raw.SubnetLen < network.prefix + 2) {
    issues.push({
      path: at('SubnetLen'),
      message: `${raw.SubnetLen} leaves fewer than four subnets in ${network.text}; SubnetLen must be at least ${network.prefix + 2}`,
    });
  }

  let ipv6Network: Cidr | undefined;
  let ipv6SubnetLen: number | undefined;
  if (raw.IPv6Network === undefined) {
    if (raw.IPv6SubnetLen !== undefined) {
      issues.push({ path: at('IPv6SubnetLen'), message: 'is set but network.IPv6Network is not' });
    }
  } else {
    const v6 = parseCidr(raw.IPv6Network, 6);
    if (typeof v6 === 'string') {
      issues.push({ path: at('IPv6Network'), message: v6 });
    } else {
      ipv6Network = v6;
      if (raw.IPv6SubnetLen === undefined) {
        if (v6.prefix > 124) {
          issues.push({ path: at('IPv6Network'), message: `${v6.text} is too small; the smallest useful network is a /124` });
        }
        ipv6SubnetLen = v6.prefix <= 62 ? 64 : v6.prefix + 2;
      } else if (raw.IPv6SubnetLen > 126) {
        issues.push({ path: at('IPv6SubnetLen'), message: `${raw.IPv6SubnetLen} is too long; IPv6SubnetLen must be at most 126` });
      } else if (raw.IPv6SubnetLen < v6.prefix + 2) {
        issues.push({
          path: at('IPv6SubnetLen'),
          message: `${raw.IPv6SubnetLen} leaves fewer than four subnets in ${v6.text}; IPv6SubnetLen must be at least ${v6.prefix + 2}`,
        });
      } else {
        ipv6SubnetLen = raw.IPv6SubnetLen;
      }
    }
  }

  const type = raw.Backend?.Type ?? 'vxlan';
  if (raw.MTU !== undefined && ipv6Network !== undefined && raw.MTU - ENCAP_OVERHEAD[type] < IPV6_MIN_MTU) {
    issues.push({
      path: at('MTU'),
      message: `${raw.MTU} leaves ${raw.MTU - ENCAP_OVERHEAD[type]} bytes after ${type} encapsulation, below IPv6's minimum of ${IPV6_MIN_MTU}`,
    });
  }

  if (issues.length > bad || typeof network === 'string') return null;
  const config: NetworkConfig = {
    network: network.text,
    subnetLen,
    backend: { type, port: raw.Backend?.Port ?? DEFAULT_PORTS[type], vni: raw.Backend?.VNI ?? DEFAULT_VNI },
  };
  if (ipv6Network !== undefined) {
    config.ipv6Network = ipv6Network.text;
    config.ipv6SubnetLen = ipv6SubnetLen;
  }
  if (raw.MTU !== undefined) config.mtu = raw.MTU;
  return { config, network, ipv6Network };
}

const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** A locally administered unicast MAC from the subnet's network address: 10.244.1.0 → 02:00:0a:f4:01:00. */
export function defaultVtepMAC(subnet: Cidr): string {
  const hex = subnet.bytes.slice(0, 4).map((b) => b.toString(16).padStart(2, '0'));
  return ['02', '00', ...hex].join(':');
}

export function checkHosts(raw: RawHost[], net: ParsedNetwork, issues: StoreIssue[]): ParsedHost[] {
  const out: ParsedHost[] = [];
  const seen = { name: new Map<string, number>(), ip: new Map<string, number>(), subnet: new Map<string, number>(),
    v6: new Map<string, number>(), mac: new Map<string, number>() };
  const unique = (kind: keyof typeof seen, key: string, i: number, path: string, what: string): boolean => {
    const prev = seen[kind].get(key);
    if (prev !== undefined) {
      issues.push({ path, message: `${what} ${key} is already used by hosts[${prev}]` });
      return false;
    }
    seen[kind].set(key, i);
    return true;
  };

  raw.forEach((h, i) => {
    const at = (field: string) => `hosts[${i}].${field}`;
    const bad = issues.length;
    if (!HOST_NAME.test(h.name)) {
      issues.push({ path: at('name'), message: `${JSON.stringify(h.name)} is not a valid host name (letters, digits, ".", "_", "-")` });
    } else unique('name', h.name, i, at('name'), 'host name');

    const ip = parseIp(h.publicIP, 4);
    if (ip === null) {
      issues.push({ path: at('publicIP'), message: `${JSON.stringify(h.publicIP)} is not an IPv4 address` });
    } else if (cidrContains(net.network, ip)) {
      issues.push({ path: at('publicIP'), message: `${ip.text} is inside the overlay network ${net.network.text}; the underlay address must be outside it` });
    } else unique('ip', ip.text, i, at('publicIP'), 'publicIP');

    const subnet = parseCidr(h.subnet, 4);
    if (typeof subnet === 'string') {
      issues.push({ path: at('subnet'), message: subnet });
    } else if (!cidrContains(net.network, subnet)) {
      issues.push({ path: at('subnet'), message: `${subnet.text} is not inside network ${net.network.text}` });
    } else if (subnet.prefix !== net.config.subnetLen) {
      issues.push({ path: at('subnet'), message: `${subnet.text} is a /${subnet.prefix} but network.SubnetLen is ${net.config.subnetLen}` });
    } else unique('subnet', subnet.text, i, at('subnet'), 'subnet');

    let v6: Cidr | undefined;
    if (h.ipv6Subnet !== undefined) {
      const p = parseCidr(h.ipv6Subnet, 6);
      if (net.ipv6Network === undefined) {
        issues.push({ path: at('ipv6Subnet'), message: 'is set but network.IPv6Network is not' });
      } else if (typeof p === 'string') {
        issues.push({ path: at('ipv6Subnet'), message: p });
      } else if (!cidrContains(net.ipv6Network, p)) {
        issues.push({ path: at('ipv6Subnet'), message: `${p.text} is not inside network ${net.ipv6Network.text}` });
      } else if (p.prefix !== net.config.ipv6SubnetLen) {
        issues.push({ path: at('ipv6Subnet'), message: `${p.text} is a /${p.prefix} but network.IPv6SubnetLen is ${net.config.ipv6SubnetLen}` });
      } else if (unique('v6', p.text, i, at('ipv6Subnet'), 'ipv6Subnet')) v6 = p;
    }

    let mac = h.vtepMAC?.toLowerCase();
    if (mac !== undefined) {
      if (!MAC.test(mac)) {
        issues.push({ path: at('vtepMAC'), message: `${JSON.stringify(h.vtepMAC)} is not a MAC address (like 02:00:0a:f4:01:00)` });
      } else if ((parseInt(mac.slice(0, 2), 16) & 1) !== 0) {
        issues.push({ path: at('vtepMAC'), message: `${mac} is a multicast MAC; a VTEP needs a unicast one` });
      } else if (mac === '00:00:00:00:00:00') {
        issues.push({ path: at('vtepMAC'), message: 'the all-zero MAC is not a valid VTEP address' });
      }
    } else if (typeof subnet !== 'string') {
      mac = defaultVtepMAC(subnet);
    }
    if (mac !== undefined && issues.length === bad) unique('mac', mac, i, at('vtepMAC'), 'vtepMAC');

    if (issues.length > bad || ip === null || typeof subnet === 'string' || mac === undefined) return;
    const record: HostRecord = { name: h.name, publicIP: ip.text, subnet: subnet.text, vtepMAC: mac };
    if (v6 !== undefined) record.ipv6Subnet = v6.text;
    if (h.port !== undefined) record.port = h.port;
    out.push({ record, subnet, ipv6Subnet: v6, index: i });
  });
  return out;
}

/** Structural duplicates among manifests: the same group/kind/namespace/name twice. */
export function checkManifestKeys(manifests: RawClusterDoc['manifests'], issues: StoreIssue[]): void {
  const seen = new Map<string, number>();
  (manifests ?? []).forEach((m, i) => {
    const group = m.apiVersion.includes('/') ? m.apiVersion.slice(0, m.apiVersion.indexOf('/')) : '';
    const key = `${group}|${m.kind}|${m.metadata.namespace ?? ''}|${m.metadata.name}`;
    const prev = seen.get(key);
    if (prev !== undefined) {
      const ns = m.metadata.namespace === undefined ? '' : `${m.metadata.namespace}/`;
      issues.push({ path: `manifests[${i}].metadata.name`, message: `duplicate ${m.kind} ${ns}${m.metadata.name} (also manifests[${prev}])` });
    } else seen.set(key, i);
  });
}
