// The value of a subnet lease key, in Flannel's format (Documentation/reservations.md):
//   {"PublicIP":"192.168.64.3","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}
// plus two Sluice fields that Flannel ignores: "SluiceHost" (the host's name; Flannel hosts have
// none and are named by their PublicIP) and "SluicePort" (underlay UDP port when not the backend's).
import { z } from 'zod';
import type { RawHost } from '../config-schema.js';
import type { StoreIssue } from '../errors.js';
import type { HostRecord, NetworkConfig } from '../store.js';

const LeaseValue = z.looseObject({
  PublicIP: z.string(),
  PublicIPv6: z.string().nullish(),
  BackendType: z.string(),
  BackendData: z.looseObject({ VNI: z.number().int().optional(), VtepMAC: z.string().optional() }).nullish(),
  SluiceHost: z.string().optional(),
  SluicePort: z.number().int().optional(),
});

export type LeaseValue = z.infer<typeof LeaseValue>;

export interface LeaseAttrs {
  publicIP: string;
  /** Host name; stored as SluiceHost. */
  name?: string;
  vtepMAC: string;
  port?: number;
}

/** The JSON written for our own lease. */
export function leaseValueJSON(a: LeaseAttrs, backend: NetworkConfig['backend']): string {
  const v: Record<string, unknown> = {
    PublicIP: a.publicIP,
    PublicIPv6: null,
    BackendType: backend.type,
    BackendData: { VNI: backend.vni, VtepMAC: a.vtepMAC },
  };
  if (a.name !== undefined) v.SluiceHost = a.name;
  if (a.port !== undefined) v.SluicePort = a.port;
  return JSON.stringify(v);
}

/** The same lease value for a host record (used to publish static hosts and in tests). */
export function hostLeaseJSON(h: HostRecord, backend: NetworkConfig['backend']): string {
  return leaseValueJSON({ publicIP: h.publicIP, name: h.name, vtepMAC: h.vtepMAC, port: h.port }, backend);
}

/**
 * Parses a lease value into the cluster file's host shape (so the file store's host checks apply)
 * and reports problems at `at` (e.g. `hosts[2]`). Subnets come from the key, not the value.
 */
export function parseLeaseValue(text: string, at: string, backend: NetworkConfig['backend'] | undefined, issues: StoreIssue[]):
  Omit<RawHost, 'subnet' | 'ipv6Subnet'> | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    issues.push({ path: at, message: `lease value is not valid JSON: ${(e as Error).message}` });
    return null;
  }
  const r = LeaseValue.safeParse(json);
  if (!r.success) {
    for (const i of r.error.issues) issues.push({ path: `${at}.${i.path.join('.')}`, message: i.message });
    return null;
  }
  const v = r.data;
  const bad = issues.length;
  if (backend !== undefined && v.BackendType !== backend.type) {
    issues.push({ path: `${at}.BackendType`, message: `${JSON.stringify(v.BackendType)} does not match the network's backend ${JSON.stringify(backend.type)}; this host cannot be reached` });
  }
  const vni = v.BackendData?.VNI;
  if (backend?.type === 'vxlan' && vni !== undefined && vni !== backend.vni) {
    issues.push({ path: `${at}.BackendData.VNI`, message: `${vni} does not match the network's VNI ${backend.vni}` });
  }
  if (issues.length > bad) return null;
  const host: Omit<RawHost, 'subnet' | 'ipv6Subnet'> = { name: v.SluiceHost ?? v.PublicIP, publicIP: v.PublicIP };
  if (v.BackendData?.VtepMAC !== undefined) host.vtepMAC = v.BackendData.VtepMAC;
  if (v.SluicePort !== undefined) host.port = v.SluicePort;
  return host;
}
