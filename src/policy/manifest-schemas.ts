// Structural schemas (zod v4) for the manifests sluice reads. They check shapes and
// types only; translators (k8s-policy.ts, calico-policy.ts) check meaning. Policy specs
// are strict (an unknown field such as a misspelt "podSelecter" is an error, because
// ignoring it could silently widen a policy); Pod and Namespace are loose since they
// carry many fields policy does not use. `null` is accepted wherever a field is optional
// (YAML "ingress:" with no value), and means the same as absent.

import { z } from 'zod';

const labelMap = z.record(z.string(), z.string());

const metadata = z.looseObject({
  name: z.string().min(1),
  namespace: z.string().min(1).nullish(),
  labels: labelMap.nullish(),
  annotations: labelMap.nullish(),
});

const labelSelector = z.strictObject({
  matchLabels: labelMap.nullish(),
  matchExpressions: z.array(z.strictObject({
    key: z.string(),
    operator: z.string(),
    values: z.array(z.string()).nullish(),
  })).nullish(),
});

const intOrString = z.union([z.number(), z.string()]);

const k8sPeer = z.strictObject({
  podSelector: labelSelector.nullish(),
  namespaceSelector: labelSelector.nullish(),
  ipBlock: z.strictObject({ cidr: z.string(), except: z.array(z.string()).nullish() }).nullish(),
});

const k8sPort = z.strictObject({
  protocol: z.string().nullish(),
  port: intOrString.nullish(),
  endPort: z.number().nullish(),
});

const policyType = z.enum(['Ingress', 'Egress']);

export const k8sNetworkPolicySchema = z.looseObject({
  metadata,
  spec: z.strictObject({
    podSelector: labelSelector.nullish(),
    policyTypes: z.array(policyType).nullish(),
    ingress: z.array(z.strictObject({ from: z.array(k8sPeer).nullish(), ports: z.array(k8sPort).nullish() })).nullish(),
    egress: z.array(z.strictObject({ to: z.array(k8sPeer).nullish(), ports: z.array(k8sPort).nullish() })).nullish(),
  }),
});

const entityRule = z.strictObject({
  nets: z.array(z.string()).nullish(),
  notNets: z.array(z.string()).nullish(),
  selector: z.string().nullish(),
  notSelector: z.string().nullish(),
  namespaceSelector: z.string().nullish(),
  ports: z.array(intOrString).nullish(),
  notPorts: z.array(intOrString).nullish(),
  serviceAccounts: z.unknown().optional(),
  services: z.unknown().optional(),
});

const icmp = z.strictObject({ type: z.number().nullish(), code: z.number().nullish() });

const calicoRule = z.strictObject({
  action: z.enum(['Allow', 'Deny', 'Log', 'Pass']),
  protocol: intOrString.nullish(),
  notProtocol: intOrString.nullish(),
  icmp: icmp.nullish(),
  notICMP: icmp.nullish(),
  ipVersion: z.number().nullish(),
  source: entityRule.nullish(),
  destination: entityRule.nullish(),
  http: z.unknown().optional(),
  metadata: z.looseObject({ annotations: labelMap.nullish() }).nullish(),
});

const calicoSpecShape = {
  tier: z.string().nullish(),
  order: z.number().nullish(),
  selector: z.string().nullish(),
  types: z.array(policyType).nullish(),
  ingress: z.array(calicoRule).nullish(),
  egress: z.array(calicoRule).nullish(),
  serviceAccountSelector: z.string().nullish(),
  performanceHints: z.array(z.string()).nullish(),
};

export const calicoNetworkPolicySchema = z.looseObject({
  metadata,
  spec: z.strictObject(calicoSpecShape),
});

export const globalNetworkPolicySchema = z.looseObject({
  metadata,
  spec: z.strictObject({
    ...calicoSpecShape,
    namespaceSelector: z.string().nullish(),
    doNotTrack: z.boolean().nullish(),
    preDNAT: z.boolean().nullish(),
    applyOnForward: z.boolean().nullish(),
  }),
});

export const namespaceSchema = z.looseObject({ metadata });

const containerPort = z.looseObject({
  name: z.string().nullish(),
  containerPort: z.number(),
  protocol: z.string().nullish(),
});

export const podSchema = z.looseObject({
  metadata,
  spec: z.looseObject({
    nodeName: z.string().nullish(),
    hostNetwork: z.boolean().nullish(),
    serviceAccountName: z.string().nullish(),
    containers: z.array(z.looseObject({ ports: z.array(containerPort).nullish() })).nullish(),
  }).nullish(),
  status: z.looseObject({
    podIP: z.string().nullish(),
    podIPs: z.array(z.looseObject({ ip: z.string() })).nullish(),
  }).nullish(),
});

export const listSchema = z.looseObject({ items: z.array(z.unknown()).nullish() });

export type K8sNetworkPolicyDoc = z.infer<typeof k8sNetworkPolicySchema>;
export type CalicoNetworkPolicyDoc = z.infer<typeof calicoNetworkPolicySchema>;
export type GlobalNetworkPolicyDoc = z.infer<typeof globalNetworkPolicySchema>;
export type NamespaceDoc = z.infer<typeof namespaceSchema>;
export type PodDoc = z.infer<typeof podSchema>;

/** One field-level problem found by a schema. */
export interface SchemaProblem {
  path: string;
  message: string;
}

type Issue = z.core.$ZodIssue;

function pathOf(base: string, segments: readonly PropertyKey[]): string {
  let p = base;
  for (const s of segments) {
    if (typeof s === 'number') p = `${p}[${s}]`;
    else {
      const key = String(s);
      p = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? (p ? `${p}.${key}` : key) : `${p}[${JSON.stringify(key)}]`;
    }
  }
  return p;
}

const TYPE_WORDS: Readonly<Record<string, string>> = { int: 'integer', record: 'object', map: 'object' };

function typeWord(t: string): string {
  return TYPE_WORDS[t] ?? t;
}

function describeIssue(issue: Issue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? 'required' : `expected ${typeWord(issue.expected)}`;
    case 'invalid_union': {
      if (issue.input === undefined) return 'required';
      const expected: string[] = [];
      for (const branch of issue.errors) {
        const only = branch.length === 1 ? branch[0] : undefined;
        if (only === undefined || only.code !== 'invalid_type' || only.path.length > 0) return issue.message;
        expected.push(typeWord(only.expected));
      }
      return `expected ${expected.join(' or ')}`;
    }
    case 'invalid_value':
      if (issue.input === undefined) return 'required';
      return `expected one of ${issue.values.map((v) => String(v)).join(', ')}, got ${JSON.stringify(issue.input)}`;
    case 'too_small':
      if (issue.origin === 'string' && issue.minimum === 1) return 'must not be empty';
      return issue.message;
    default:
      return issue.message;
  }
}

/** Validates `value` with `schema`; returns the data or the list of problems (paths prefixed by `base`). */
export function check<T>(schema: z.ZodType<T>, value: unknown, base: string): { data: T } | { problems: SchemaProblem[] } {
  const r = schema.safeParse(value, { reportInput: true });
  if (r.success) return { data: r.data };
  const problems: SchemaProblem[] = [];
  for (const issue of r.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) problems.push({ path: pathOf(base, [...issue.path, k]), message: 'unknown field' });
    } else {
      problems.push({ path: pathOf(base, issue.path), message: describeIssue(issue) });
    }
  }
  return { problems };
}
