// The cluster file format: parse YAML text into a validated StoreSnapshot, and turn a snapshot
// back into a document (used by the lab to write its cluster.yaml).
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import type { z } from 'zod';
import { RawClusterDoc, knownFields } from './config-schema.js';
import { deriveEndpoints } from './endpoints.js';
import { StoreError, type StoreIssue, formatPath } from './errors.js';
import type { HostRecord, NetworkConfig, StoreSnapshot } from './store.js';
import { DEFAULT_PORTS, DEFAULT_VNI, checkHosts, checkManifestKeys, checkNetwork } from './validate.js';

/** What writeClusterFile needs: endpoints are not written, they come from the Pod manifests. */
export interface ClusterFileContent {
  config: NetworkConfig;
  hosts: readonly HostRecord[];
  manifests: readonly unknown[];
}

/**
 * Parses and validates cluster file text. `source` names the file in error messages.
 * Throws StoreError (STORE_PARSE or STORE_INVALID) listing every problem found.
 */
export function parseClusterText(text: string, source: string): StoreSnapshot {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new StoreError('STORE_PARSE', source, doc.errors.map((e) => ({
      path: '',
      message: `line ${e.linePos?.[0].line ?? '?'}, column ${e.linePos?.[0].col ?? '?'}: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`,
    })));
  }
  let value: unknown;
  try {
    // toJS resolves aliases; an unknown or excessive alias (a "billion laughs" file) throws here.
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new StoreError('STORE_PARSE', source, [{ path: '', message: (e as Error).message }], { cause: e });
  }
  return validateClusterDoc(value, source);
}

/** Validates an already parsed document (YAML or JSON) into a snapshot. */
export function validateClusterDoc(input: unknown, source: string): StoreSnapshot {
  if (input === null || input === undefined) {
    throw new StoreError('STORE_INVALID', source, [{ path: '', message: 'the file is empty; it needs at least a network section' }]);
  }
  const parsed = RawClusterDoc.safeParse(input, { reportInput: true });
  if (!parsed.success) throw new StoreError('STORE_INVALID', source, zodIssues(parsed.error.issues));

  const raw = parsed.data;
  const issues: StoreIssue[] = [];
  const net = checkNetwork(raw.network, issues);
  if (net === null) throw new StoreError('STORE_INVALID', source, issues);
  const hosts = checkHosts(raw.hosts ?? [], net, issues);
  checkManifestKeys(raw.manifests, issues);
  // Endpoint checks need the hosts; skip them when hosts were wrong to avoid follow-on noise.
  const endpoints = issues.length === 0 ? deriveEndpoints(raw.manifests ?? [], hosts, issues) : [];
  if (issues.length > 0) throw new StoreError('STORE_INVALID', source, issues);

  // Manifests are handed on as written (the schema's copy would be equal, but raw is the contract).
  const manifests = Array.isArray((input as { manifests?: unknown }).manifests) ? (input as { manifests: unknown[] }).manifests : [];
  return { config: net.config, hosts: hosts.map((h) => h.record), endpoints, manifests };
}

function zodIssues(list: readonly z.core.$ZodIssue[]): StoreIssue[] {
  const out: StoreIssue[] = [];
  for (const i of list) {
    if (i.code === 'unrecognized_keys') {
      const known = knownFields(i.path);
      for (const key of i.keys) {
        const near = known.find((k) => k.toLowerCase() === key.toLowerCase());
        const hint = near !== undefined ? `; did you mean ${near}?` : known.length > 0 ? ` (known fields: ${known.join(', ')})` : '';
        out.push({ path: formatPath([...i.path, key]), message: `unknown field${hint}` });
      }
    } else if (i.code === 'invalid_type' && i.input === undefined) {
      out.push({ path: formatPath(i.path), message: `is missing; ${i.message.replace(/, got nothing$/, '')}` });
    } else {
      out.push({ path: formatPath(i.path), message: i.message });
    }
  }
  return out;
}

/** The file document for a snapshot, with Flannel's field names; defaults are written out. */
export function toClusterDocument(content: ClusterFileContent): Record<string, unknown> {
  const c = content.config;
  const network: Record<string, unknown> = { Network: c.network, SubnetLen: c.subnetLen };
  if (c.ipv6Network !== undefined) network.IPv6Network = c.ipv6Network;
  if (c.ipv6SubnetLen !== undefined) network.IPv6SubnetLen = c.ipv6SubnetLen;
  network.Backend = { Type: c.backend.type, Port: c.backend.port ?? DEFAULT_PORTS[c.backend.type], VNI: c.backend.vni ?? DEFAULT_VNI };
  if (c.mtu !== undefined) network.MTU = c.mtu;
  const hosts = content.hosts.map((h) => {
    const o: Record<string, unknown> = { name: h.name, publicIP: h.publicIP, subnet: h.subnet };
    if (h.ipv6Subnet !== undefined) o.ipv6Subnet = h.ipv6Subnet;
    o.vtepMAC = h.vtepMAC;
    if (h.port !== undefined) o.port = h.port;
    return o;
  });
  return { network, hosts, manifests: [...content.manifests] };
}

/**
 * Writes a cluster file atomically (temporary file in the same directory, fsync, rename) so a
 * watching daemon never reads half a file. Validates first: an invalid snapshot throws StoreError
 * and the existing file is left alone. Returns the snapshot as a reader will see it.
 */
export async function writeClusterFile(path: string, content: ClusterFileContent): Promise<StoreSnapshot> {
  const text = `# Written by sluice; the daemons watch this file.\n${stringify(toClusterDocument(content), { lineWidth: 0 })}`;
  const snapshot = parseClusterText(text, path);
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  return snapshot;
}
