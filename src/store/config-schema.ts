// Structural schema of the cluster file (phase 1 of validation: types, required fields, unknown
// keys). Semantic checks that relate fields to each other (CIDRs, containment, uniqueness) are in
// validate.ts and only run once this schema passes, so their messages can assume sane types.
//
// The `network` section keeps Flannel's field names so a Flannel net-conf is recognisable.
import { z } from 'zod';

const received = (input: unknown): string =>
  input === undefined ? 'nothing' : input === null ? 'null' : Array.isArray(input) ? 'a list' : JSON.stringify(input);

const int = (what: string, min: number, max: number) =>
  z
    .number({ error: (iss) => `expected ${what} (an integer ${min}..${max}), got ${received(iss.input)}` })
    .int({ error: (iss) => `expected ${what} (an integer ${min}..${max}), got ${received(iss.input)}` })
    .min(min, { error: (iss) => `${String(iss.input)} is out of range for ${what} (${min}..${max})` })
    .max(max, { error: (iss) => `${String(iss.input)} is out of range for ${what} (${min}..${max})` });

const str = (what: string) =>
  z.string({ error: (iss) => `expected ${what} (a string), got ${received(iss.input)}` });

const nonEmpty = (what: string) => str(what).min(1, { error: `${what} must not be empty` });

export const BACKEND_TYPES = ['vxlan', 'udp'] as const;

const RawBackend = z.strictObject({
  Type: z.enum(BACKEND_TYPES, {
    error: (iss) => `unknown backend type ${received(iss.input)}; expected one of: ${BACKEND_TYPES.join(', ')}`,
  }),
  Port: int('a UDP port', 1, 65535).optional(),
  VNI: int('a VXLAN VNI', 0, 0xffffff).optional(),
}, { error: (iss) => `expected a backend (a mapping with Type), got ${received(iss.input)}` });

const RawNetwork = z.strictObject({
  Network: str('an IPv4 CIDR'),
  SubnetLen: int('a prefix length', 1, 32).optional(),
  IPv6Network: str('an IPv6 CIDR').optional(),
  IPv6SubnetLen: int('a prefix length', 1, 128).optional(),
  Backend: RawBackend.optional(),
  MTU: int('an MTU', 576, 65535).optional(),
}, { error: (iss) => `expected the network config (a mapping with Network, SubnetLen, Backend), got ${received(iss.input)}` });

const RawHost = z.strictObject({
  name: nonEmpty('a host name'),
  publicIP: str('an IPv4 address'),
  subnet: str('an IPv4 CIDR'),
  ipv6Subnet: str('an IPv6 CIDR').optional(),
  vtepMAC: str('a MAC address').optional(),
  port: int('a UDP port', 1, 65535).optional(),
}, { error: (iss) => `expected a host (a mapping with name, publicIP, subnet), got ${received(iss.input)}` });

const StringMap = z.record(
  z.string(),
  z.string({ error: (iss) => `label and annotation values must be strings, got ${received(iss.input)}` }),
);

/** Only the fields every Kubernetes object has; the policy layer validates the rest. */
const RawManifest = z.looseObject({
  apiVersion: nonEmpty('apiVersion'),
  kind: nonEmpty('kind'),
  metadata: z.looseObject(
    {
      name: nonEmpty('metadata.name'),
      namespace: nonEmpty('metadata.namespace').optional(),
      labels: StringMap.optional(),
      annotations: StringMap.optional(),
    },
    { error: (iss) => `expected metadata (a mapping with a name), got ${received(iss.input)}` },
  ),
}, { error: (iss) => `expected a Kubernetes object (a mapping), got ${received(iss.input)}` });

export const RawClusterDoc = z.strictObject(
  {
    network: RawNetwork,
    hosts: z.array(RawHost, { error: (iss) => `expected a list of hosts, got ${received(iss.input)}` }).optional(),
    manifests: z
      .array(RawManifest, { error: (iss) => `expected a list of manifests, got ${received(iss.input)}` })
      .optional(),
  },
  { error: (iss) => `expected a mapping with network, hosts and manifests, got ${received(iss.input)}` },
);

export type RawClusterDoc = z.infer<typeof RawClusterDoc>;
export type RawHost = z.infer<typeof RawHost>;
export type RawNetwork = z.infer<typeof RawNetwork>;

/** Field names allowed at a path, for "did you mean" hints on unknown keys. */
export function knownFields(path: readonly PropertyKey[]): readonly string[] {
  if (path.length === 0) return Object.keys(RawClusterDoc.shape);
  if (path.length === 1 && path[0] === 'network') return Object.keys(RawNetwork.shape);
  if (path.length === 2 && path[0] === 'network' && path[1] === 'Backend') return Object.keys(RawBackend.shape);
  if (path.length === 2 && path[0] === 'hosts') return Object.keys(RawHost.shape);
  return [];
}
