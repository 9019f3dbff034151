// Loading manifests: files or directories of YAML (multi-document) or JSON ->
// documents -> a validated ResourceSet. All-or-nothing: every problem in the whole set
// is collected and thrown as one ManifestError, and no ResourceSet is returned, so a
// caller holding a previous set keeps it unchanged.
//
// Kinds: v1 Namespace, v1 Pod, networking.k8s.io/v1 NetworkPolicy, projectcalico.org/v3
// NetworkPolicy and GlobalNetworkPolicy, and v1 List (or <Kind>List) of those.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import YAML from 'yaml';
import { translateCalicoPolicy } from './calico-policy.js';
import { FieldError, ManifestError, joinPath, type ManifestIssue } from './errors.js';
import { canonicalIP } from './ip.js';
import { translateK8sPolicy } from './k8s-policy.js';
import {
  calicoNetworkPolicySchema, check, globalNetworkPolicySchema, k8sNetworkPolicySchema, listSchema,
  namespaceSchema, podSchema, type PodDoc,
} from './manifest-schemas.js';
import {
  NAMESPACE_NAME_LABEL, podIPs, type ContainerPort, type Namespace, type Origin, type Pod, type Policy,
  type ResourceSet,
} from './model.js';
import { SCTP, TCP, UDP } from './protocols.js';
import { checkInt, checkLabels, checkName, checkPortName } from './validation.js';

/** One parsed document and where it came from. */
export interface ManifestDocument {
  source: string;
  /** 1-based index of the document in its source. */
  doc: number;
  value: unknown;
}

export interface LoadOptions {
  /** What to do with kinds sluice does not know (default 'error'). */
  unknownKinds?: 'error' | 'ignore';
}

export const EMPTY_RESOURCES: ResourceSet = Object.freeze({ namespaces: [], pods: [], policies: [] });

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** Splits text into documents: JSON (one document) when format is json, else multi-document YAML. */
export function parseManifestText(text: string, source: string, format: 'yaml' | 'json' = 'yaml'): ManifestDocument[] {
  if (format === 'json') {
    try {
      return [{ source, doc: 1, value: JSON.parse(text) }];
    } catch (e) {
      throw new ManifestError([{ source, doc: 1, path: '', message: `JSON syntax error: ${(e as Error).message}` }]);
    }
  }
  const lineCounter = new YAML.LineCounter();
  const docs = YAML.parseAllDocuments(text, { prettyErrors: false, lineCounter });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: ManifestDocument[] = [];
  const issues: ManifestIssue[] = [];
  list.forEach((d, i) => {
    if (d.errors.length > 0) {
      const e = d.errors[0];
      const at = lineCounter.linePos(e.pos[0]);
      issues.push({
        source, doc: i + 1, path: '',
        message: `YAML syntax error${at ? ` at line ${at.line}, column ${at.col}` : ''}: ${e.message.split('\n')[0]}`,
      });
      return;
    }
    out.push({ source, doc: i + 1, value: d.toJS({ maxAliasCount: 100 }) });
  });
  if (issues.length > 0) throw new ManifestError(issues);
  return out;
}

function readError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code) return `cannot read (${err.code}): ${err.message.replace(/^E[A-Z]+: /, '').split(',')[0]}`;
  return `cannot read: ${err.message}`;
}

function listFiles(path: string): string[] {
  const st = statSync(path);
  if (!st.isDirectory()) return [path];
  // Like `kubectl apply -f dir`: the directory's manifest files, not recursive, by name.
  return readdirSync(path)
    .filter((f) => MANIFEST_EXTENSIONS.has(extname(f).toLowerCase()))
    .sort()
    .map((f) => join(path, f))
    .filter((f) => statSync(f).isFile());
}

/** Reads files and directories (their .yaml/.yml/.json files) into documents. */
export function readManifestFiles(paths: readonly string[]): ManifestDocument[] {
  const out: ManifestDocument[] = [];
  const issues: ManifestIssue[] = [];
  for (const p of paths) {
    let files: string[];
    try {
      files = listFiles(p);
    } catch (e) {
      issues.push({ source: p, doc: 0, path: '', message: readError(e) });
      continue;
    }
    for (const f of files) {
      try {
        const text = readFileSync(f, 'utf8');
        out.push(...parseManifestText(text, f, extname(f).toLowerCase() === '.json' ? 'json' : 'yaml'));
      } catch (e) {
        if (e instanceof ManifestError) issues.push(...e.issues);
        else issues.push({ source: f, doc: 0, path: '', message: readError(e) });
      }
    }
  }
  if (issues.length > 0) throw new ManifestError(issues);
  return out;
}

type Resource =
  | { kind: 'namespace'; value: Namespace }
  | { kind: 'pod'; value: Pod }
  | { kind: 'policy'; value: Policy };

const PROTOCOLS: Readonly<Record<string, number>> = { TCP, UDP, SCTP };

function namespaceFrom(doc: ReturnType<typeof namespaceSchema.parse>, origin: Origin): Namespace {
  const name = doc.metadata.name;
  checkName(name, 'metadata.name', 'namespace name');
  const labels = doc.metadata.labels ?? {};
  checkLabels(labels, 'metadata.labels');
  // Kubernetes sets (and keeps) this label on every namespace.
  return { name, labels: { ...labels, [NAMESPACE_NAME_LABEL]: name }, implicit: false, origin };
}

function podFrom(doc: PodDoc, origin: Origin): Pod {
  const namespace = doc.metadata.namespace ?? 'default';
  const labels = doc.metadata.labels ?? {};
  checkLabels(labels, 'metadata.labels');
  const ips: string[] = [];
  const addIP = (text: string, path: string): void => {
    const c = canonicalIP(text);
    if (c === undefined) throw new FieldError(path, `invalid IP address ${JSON.stringify(text)}`);
    if (!ips.includes(c)) ips.push(c);
  };
  const status = doc.status;
  if (status?.podIP != null && status.podIP !== '') addIP(status.podIP, 'status.podIP');
  (status?.podIPs ?? []).forEach((p, i) => addIP(p.ip, `status.podIPs[${i}].ip`));
  const ports: ContainerPort[] = [];
  (doc.spec?.containers ?? []).forEach((c, ci) => {
    (c.ports ?? []).forEach((p, pi) => {
      const path = `spec.containers[${ci}].ports[${pi}]`;
      const port = checkInt(p.containerPort, 1, 65535, `${path}.containerPort`, 'containerPort');
      const protoName = p.protocol ?? 'TCP';
      const protocol = PROTOCOLS[protoName];
      if (protocol === undefined) {
        throw new FieldError(`${path}.protocol`, `expected one of TCP, UDP, SCTP, got ${JSON.stringify(protoName)}`);
      }
      const entry: ContainerPort = { port, protocol };
      if (p.name != null && p.name !== '') {
        checkPortName(p.name, `${path}.name`);
        entry.name = p.name;
      }
      ports.push(entry);
    });
  });
  const pod: Pod = {
    namespace, name: doc.metadata.name, labels, hostNetwork: doc.spec?.hostNetwork === true,
    statusIPs: ips, ports, origin,
  };
  if (doc.spec?.nodeName != null) pod.nodeName = doc.spec.nodeName;
  if (doc.spec?.serviceAccountName != null) pod.serviceAccount = doc.spec.serviceAccountName;
  return pod;
}

/** Converts one object (a document or a List item) into resources, or reports its problems. */
function convert(value: unknown, origin: Origin, opts: LoadOptions, issues: ManifestIssue[], out: Resource[]): void {
  const base = origin.path;
  const report = (path: string, message: string): void => {
    issues.push({ source: origin.source, doc: origin.doc, path, message });
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    report(base, 'expected an object (a Kubernetes or Calico resource)');
    return;
  }
  const obj = value as Record<string, unknown>;
  const { apiVersion, kind } = obj;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
    if (typeof apiVersion !== 'string') report(joinPath(base, 'apiVersion'), apiVersion === undefined ? 'required' : 'expected string');
    if (typeof kind !== 'string') report(joinPath(base, 'kind'), kind === undefined ? 'required' : 'expected string');
    return;
  }
  const run = <T>(schema: Parameters<typeof check<T>>[0], build: (data: T) => Resource): void => {
    const r = check(schema, obj, base);
    if ('problems' in r) {
      for (const p of r.problems) report(p.path, p.message);
      return;
    }
    try {
      out.push(build(r.data));
    } catch (e) {
      if (!(e instanceof FieldError)) throw e;
      report(base ? (e.path ? `${base}.${e.path}` : base) : e.path, e.message);
    }
  };
  const ns = (m: { namespace?: string | null }): string => {
    const n = m.namespace ?? 'default';
    checkName(n, 'metadata.namespace', 'namespace name');
    return n;
  };
  const policyName = (m: { name: string }): string => {
    checkName(m.name, 'metadata.name', 'policy name');
    return m.name;
  };
  switch (`${apiVersion} ${kind}`) {
    case 'v1 Namespace':
      return run(namespaceSchema, (d) => ({ kind: 'namespace', value: namespaceFrom(d, origin) }));
    case 'v1 Pod':
      return run(podSchema, (d) => ({ kind: 'pod', value: podFrom(d, origin) }));
    case 'networking.k8s.io/v1 NetworkPolicy':
      return run(k8sNetworkPolicySchema, (d) => ({
        kind: 'policy',
        value: { ...translateK8sPolicy(policyName(d.metadata), ns(d.metadata), d.spec), origin },
      }));
    case 'projectcalico.org/v3 NetworkPolicy':
      return run(calicoNetworkPolicySchema, (d) => ({
        kind: 'policy',
        value: { ...translateCalicoPolicy('CalicoNetworkPolicy', policyName(d.metadata), ns(d.metadata), d.spec), origin },
      }));
    case 'projectcalico.org/v3 GlobalNetworkPolicy':
      return run(globalNetworkPolicySchema, (d) => ({
        kind: 'policy',
        value: { ...translateCalicoPolicy('GlobalNetworkPolicy', policyName(d.metadata), undefined, d.spec), origin },
      }));
  }
  if (kind.endsWith('List')) {
    const r = check(listSchema, obj, base);
    if ('problems' in r) {
      for (const p of r.problems) report(p.path, p.message);
      return;
    }
    // API lists (PodList, ...) omit kind/apiVersion on items; fill them in.
    const itemKind = kind === 'List' ? undefined : kind.slice(0, -'List'.length);
    (r.data.items ?? []).forEach((item, i) => {
      const filled = itemKind !== undefined && item !== null && typeof item === 'object' && !Array.isArray(item)
        ? { apiVersion, kind: itemKind, ...(item as object) }
        : item;
      convert(filled, { ...origin, path: joinPath(joinPath(base, 'items'), i) }, opts, issues, out);
    });
    return;
  }
  if (opts.unknownKinds === 'ignore') return;
  report(joinPath(base, 'kind'), `unsupported kind ${JSON.stringify(kind)} with apiVersion ${JSON.stringify(apiVersion)} (expected v1 Namespace, Pod or List, networking.k8s.io/v1 NetworkPolicy, projectcalico.org/v3 NetworkPolicy or GlobalNetworkPolicy)`);
}

function where(o: Origin | undefined): string {
  return o ? `${o.source} doc ${o.doc}${o.path ? ` ${o.path}` : ''}` : 'unknown';
}

/** Validates documents into a ResourceSet; throws ManifestError listing every problem. */
export function buildResourceSet(docs: readonly ManifestDocument[], opts: LoadOptions = {}): ResourceSet {
  const issues: ManifestIssue[] = [];
  const resources: Resource[] = [];
  for (const d of docs) {
    if (d.value === null || d.value === undefined) continue; // empty YAML document
    convert(d.value, { source: d.source, doc: d.doc, path: '' }, opts, issues, resources);
  }
  const namespaces = new Map<string, Namespace>();
  const pods = new Map<string, Pod>();
  const policies = new Map<string, Policy>();
  const ipOwner = new Map<string, Pod>();
  const dup = (o: Origin | undefined, path: string, what: string, first: Origin | undefined): void => {
    issues.push({ source: o?.source ?? '', doc: o?.doc ?? 0, path: o?.path ? joinPath(o.path, path) : path, message: `duplicate ${what} (first defined at ${where(first)})` });
  };
  for (const r of resources) {
    if (r.kind === 'namespace') {
      const prev = namespaces.get(r.value.name);
      if (prev) dup(r.value.origin, 'metadata.name', `Namespace ${r.value.name}`, prev.origin);
      else namespaces.set(r.value.name, r.value);
    } else if (r.kind === 'pod') {
      const key = `${r.value.namespace}/${r.value.name}`;
      const prev = pods.get(key);
      if (prev) { dup(r.value.origin, 'metadata.name', `Pod ${key}`, prev.origin); continue; }
      pods.set(key, r.value);
      if (r.value.hostNetwork) continue; // shares the node's address; not an endpoint
      for (const ip of podIPs(r.value)) {
        const owner = ipOwner.get(ip);
        if (owner) {
          const o = r.value.origin;
          issues.push({ source: o?.source ?? '', doc: o?.doc ?? 0, path: o?.path ? joinPath(o.path, 'status') : 'status', message: `pod IP ${ip} is already used by pod ${owner.namespace}/${owner.name} (${where(owner.origin)})` });
        } else {
          ipOwner.set(ip, r.value);
        }
      }
    } else {
      const prev = policies.get(r.value.id);
      if (prev) dup(r.value.origin, 'metadata.name', r.value.id, prev.origin);
      else policies.set(r.value.id, r.value);
    }
  }
  if (issues.length > 0) throw new ManifestError(issues);
  // Pods in namespaces nobody declared get the namespace Kubernetes would need to exist.
  for (const p of pods.values()) {
    if (!namespaces.has(p.namespace)) {
      namespaces.set(p.namespace, { name: p.namespace, labels: { [NAMESPACE_NAME_LABEL]: p.namespace }, implicit: true });
    }
  }
  return {
    namespaces: [...namespaces.values()],
    pods: [...pods.values()],
    policies: [...policies.values()],
  };
}

/** Reads and validates manifest files/directories; throws ManifestError on any problem. */
export function loadManifests(paths: readonly string[], opts: LoadOptions = {}): ResourceSet {
  return buildResourceSet(readManifestFiles(paths), opts);
}

/** Validates manifests that arrive as objects (e.g. from a Store); `source` names them in errors. */
export function resourcesFromObjects(objects: readonly unknown[], source = 'store', opts: LoadOptions = {}): ResourceSet {
  return buildResourceSet(objects.map((value, i) => ({ source, doc: i + 1, value })), opts);
}
