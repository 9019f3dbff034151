// The network config at <prefix>/config: Flannel's JSON (pkg/subnet/config.go), read the way Flannel
// reads it (unknown fields ignored, so a config written for Flannel hosts is accepted), then checked
// with the same rules as the cluster file (validate.ts checkNetwork) plus Flannel's SubnetMin and
// SubnetMax. Sluice's one extension is a top-level "MTU" (the underlay MTU override).
import { z } from 'zod';
import { type Cidr, cidrContains, parseIp } from '../cidr.js';
import { BACKEND_TYPES, type RawNetwork } from '../config-schema.js';
import { type StoreIssue, formatPath } from '../errors.js';
import type { NetworkConfig } from '../store.js';
import { type ParsedNetwork, checkNetwork } from '../validate.js';
import { blockSize, cidrOf, endOf, toBig } from './subnet-math.js';

const FlannelBackend = z.looseObject({
  Type: z.string().optional(),
  Port: z.number().int().min(0).max(65535).optional(),
  VNI: z.number().int().min(0).max(0xffffff).optional(),
});

const FlannelConfig = z.looseObject({
  Network: z.string().optional(),
  SubnetLen: z.number().int().min(1).max(32).optional(),
  SubnetMin: z.string().optional(),
  SubnetMax: z.string().optional(),
  EnableIPv4: z.boolean().optional(),
  EnableIPv6: z.boolean().optional(),
  IPv6Network: z.string().optional(),
  IPv6SubnetLen: z.number().int().min(1).max(128).optional(),
  IPv6SubnetMin: z.string().optional(),
  IPv6SubnetMax: z.string().optional(),
  Backend: FlannelBackend.nullish(),
  MTU: z.number().int().min(576).max(65535).optional(),
});

/** The config with the allocation range leases are taken from. */
export interface EtcdNetwork extends ParsedNetwork {
  subnetMin: Cidr;
  subnetMax: Cidr;
  ipv6SubnetMin?: Cidr;
  ipv6SubnetMax?: Cidr;
}

/**
 * Parses the config text. Problems go to `issues` with paths like `network.SubnetLen`; returns null
 * when there were any.
 */
export function parseEtcdConfig(text: string, issues: StoreIssue[]): EtcdNetwork | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    issues.push({ path: 'network', message: `not valid JSON: ${(e as Error).message}` });
    return null;
  }
  const r = FlannelConfig.safeParse(json);
  if (!r.success) {
    for (const i of r.error.issues) issues.push({ path: formatPath(['network', ...i.path]), message: i.message });
    return null;
  }
  const c = r.data;
  const bad = issues.length;
  if (c.EnableIPv4 === false) issues.push({ path: 'network.EnableIPv4', message: 'is false, but Sluice needs an IPv4 network' });
  if (c.Network === undefined) issues.push({ path: 'network.Network', message: 'is missing; expected an IPv4 CIDR (like 10.244.0.0/16)' });
  const v6 = c.EnableIPv6 === true;
  if (v6 && c.IPv6Network === undefined) issues.push({ path: 'network.IPv6Network', message: 'is missing but EnableIPv6 is true' });
  // Flannel's default backend when none is given is udp.
  const type = c.Backend?.Type ?? 'udp';
  if (!(BACKEND_TYPES as readonly string[]).includes(type)) {
    issues.push({ path: 'network.Backend.Type', message: `unsupported backend ${JSON.stringify(type)}; Sluice speaks ${BACKEND_TYPES.join(' and ')}` });
  }
  if (issues.length > bad) return null;

  const raw: RawNetwork = { Network: c.Network! };
  if (c.SubnetLen !== undefined) raw.SubnetLen = c.SubnetLen;
  if (v6) {
    raw.IPv6Network = c.IPv6Network;
    if (c.IPv6SubnetLen !== undefined) raw.IPv6SubnetLen = c.IPv6SubnetLen;
  }
  // Port 0 means "the backend's default" to Flannel (the kernel's 8472 for vxlan).
  raw.Backend = { Type: type as (typeof BACKEND_TYPES)[number] };
  if (c.Backend?.Port !== undefined && c.Backend.Port !== 0) raw.Backend.Port = c.Backend.Port;
  if (c.Backend?.VNI !== undefined) raw.Backend.VNI = c.Backend.VNI;
  if (c.MTU !== undefined) raw.MTU = c.MTU;
  const net = checkNetwork(raw, issues);
  if (net === null) return null;

  const range = (min: string | undefined, max: string | undefined, network: Cidr, len: number, names: [string, string]) => {
    const one = (text: string | undefined, name: string, fallback: bigint): Cidr | null => {
      if (text === undefined) return cidrOf(network.family, fallback, len);
      const ip = parseIp(text, network.family);
      if (ip === null) {
        issues.push({ path: `network.${name}`, message: `${JSON.stringify(text)} is not an IPv${network.family} address` });
        return null;
      }
      if (!cidrContains(network, ip)) {
        issues.push({ path: `network.${name}`, message: `${ip.text} is not inside network ${network.text}` });
        return null;
      }
      const a = toBig(ip.bytes);
      if (a % blockSize(network.family, len) !== 0n) {
        issues.push({ path: `network.${name}`, message: `${ip.text} is not on a /${len} boundary` });
        return null;
      }
      return cidrOf(network.family, a, len);
    };
    const size = blockSize(network.family, len);
    // Flannel skips the first subnet by default (it holds the network address).
    const lo = one(min, names[0], toBig(network.bytes) + size);
    const hi = one(max, names[1], endOf(network) - size);
    if (lo === null || hi === null) return null;
    if (toBig(lo.bytes) > toBig(hi.bytes)) {
      issues.push({ path: `network.${names[0]}`, message: `${lo.text} is after ${names[1]} ${hi.text}; there are no subnets to lease` });
      return null;
    }
    return [lo, hi] as const;
  };
  const v4Range = range(c.SubnetMin, c.SubnetMax, net.network, net.config.subnetLen, ['SubnetMin', 'SubnetMax']);
  const v6Range = net.ipv6Network === undefined ? undefined
    : range(c.IPv6SubnetMin, c.IPv6SubnetMax, net.ipv6Network, net.config.ipv6SubnetLen!, ['IPv6SubnetMin', 'IPv6SubnetMax']);
  if (v4Range === null || v6Range === null) return null;
  const out: EtcdNetwork = { ...net, subnetMin: v4Range[0], subnetMax: v4Range[1] };
  if (v6Range !== undefined) {
    out.ipv6SubnetMin = v6Range[0];
    out.ipv6SubnetMax = v6Range[1];
  }
  return out;
}

export interface ConfigExtras {
  subnetMin?: string;
  subnetMax?: string;
}

/** Flannel JSON for a NetworkConfig (what `lab up --store etcd` and the tests write). */
export function etcdConfigJSON(c: NetworkConfig, extras: ConfigExtras = {}): string {
  const o: Record<string, unknown> = { Network: c.network, SubnetLen: c.subnetLen };
  if (extras.subnetMin !== undefined) o.SubnetMin = extras.subnetMin;
  if (extras.subnetMax !== undefined) o.SubnetMax = extras.subnetMax;
  if (c.ipv6Network !== undefined) {
    o.EnableIPv6 = true;
    o.IPv6Network = c.ipv6Network;
    if (c.ipv6SubnetLen !== undefined) o.IPv6SubnetLen = c.ipv6SubnetLen;
  }
  o.Backend = { Type: c.backend.type, Port: c.backend.port, VNI: c.backend.vni };
  if (c.mtu !== undefined) o.MTU = c.mtu;
  return JSON.stringify(o);
}
