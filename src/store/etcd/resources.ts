// Writing manifests to etcd (`sluice apply -f` / `sluice delete -f`). All-or-nothing:
//
//   apply: 1 the documents are validated by the policy layer (ManifestError, with file/doc/field)
//          2 the resources as they would be after the write (current ones + these) are validated
//            the way the store will read them (StoreError naming the key)
//          3 one transaction writes them all, on condition that no resource changed since step 2's
//            read; if one did, back to 2 (a few times)
//   delete: validated like apply's step 1, then one transaction deletes them all.
import type { Etcd3, IRequestOp } from 'etcd3';
import { ManifestError, type ManifestIssue } from '../../policy/errors.js';
import { type ManifestDocument, buildResourceSet } from '../../policy/manifests.js';
import { StoreError } from '../errors.js';
import { type KV, type Listing, listAll } from './client.js';
import { type EtcdLayout, type ResourceId, describeResource, prefixEnd, resourceId, resourceKey, resourcesPrefix } from './keys.js';
import { checkResourcesToWrite } from './snapshot.js';

const CONFLICT_RETRIES = 5;

export interface PlannedResource {
  id: ResourceId;
  /** Its etcd key (set by apply/delete for their layout; "" in a plan). */
  key: string;
  /** The manifest as it will be stored (JSON). */
  json: string;
  /** "file doc 2" or "file doc 2 items[1]". */
  origin: string;
}

export type WriteOutcome = 'created' | 'configured' | 'unchanged' | 'deleted' | 'not found';

export interface WriteResult {
  resource: PlannedResource;
  outcome: WriteOutcome;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Validates documents with the policy layer and splits Lists into their items (as manifests.ts
 * does). Throws ManifestError listing every problem; nothing is returned then.
 */
export function planResources(docs: readonly ManifestDocument[]): PlannedResource[] {
  buildResourceSet(docs);
  const out: PlannedResource[] = [];
  const issues: ManifestIssue[] = [];
  const seen = new Map<string, string>();
  const add = (value: unknown, d: ManifestDocument, path: string): void => {
    const origin = `${d.source} doc ${d.doc}${path === '' ? '' : ` ${path}`}`;
    if (isMap(value) && typeof value.kind === 'string' && value.kind.endsWith('List') && Array.isArray(value.items)) {
      const itemKind = value.kind === 'List' ? undefined : value.kind.slice(0, -'List'.length);
      value.items.forEach((item, i) => {
        const filled = itemKind !== undefined && isMap(item) ? { apiVersion: value.apiVersion, kind: itemKind, ...item } : item;
        add(filled, d, `${path}items[${i}]`);
      });
      return;
    }
    const id = resourceId(value);
    if (typeof id === 'string') {
      issues.push({ source: d.source, doc: d.doc, path, message: id });
      return;
    }
    const name = describeResource(id);
    const prev = seen.get(name);
    if (prev !== undefined) {
      issues.push({ source: d.source, doc: d.doc, path, message: `${describeResource(id)} is also defined at ${prev}` });
      return;
    }
    seen.set(name, origin);
    out.push({ id, key: '', json: JSON.stringify(value), origin });
  };
  for (const d of docs) if (d.value !== null && d.value !== undefined) add(d.value, d, '');
  if (issues.length > 0) throw new ManifestError(issues);
  return out;
}

/** Sets each planned resource's key for a layout (planResources does not know it). */
function keyed(layout: EtcdLayout, plan: readonly PlannedResource[]): PlannedResource[] {
  return plan.map((r) => ({ ...r, key: resourceKey(layout, r.id) }));
}

/** Resources unchanged since `revision`: etcd compares every key in the range. */
function unchangedSince(layout: EtcdLayout, revision: string) {
  const p = resourcesPrefix(layout);
  return { key: Buffer.from(p), range_end: prefixEnd(p), target: 'Mod' as const, result: 'Less' as const, mod_revision: (BigInt(revision) + 1n).toString() };
}

/** Applies resources in one transaction; throws StoreError when the result would be invalid. */
export async function applyResources(client: Etcd3, layout: EtcdLayout, planned: readonly PlannedResource[], source: string): Promise<WriteResult[]> {
  const plan = keyed(layout, planned);
  if (plan.length === 0) return [];
  for (let attempt = 1; attempt <= CONFLICT_RETRIES; attempt++) {
    const now = await listAll(client, layout);
    const existing = new Map(now.resources.map((kv) => [kv.key, kv]));
    const after = new Map(existing);
    for (const r of plan) {
      const old = existing.get(r.key);
      after.set(r.key, { key: r.key, value: r.json, lease: '0', createRevision: old?.createRevision ?? '0', modRevision: old?.modRevision ?? '0' });
    }
    const prospective: Listing = { ...now, resources: [...after.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)) };
    checkResourcesToWrite(prospective, layout, source);

    const results: WriteResult[] = plan.map((r) => {
      const old = existing.get(r.key);
      return { resource: r, outcome: old === undefined ? 'created' : sameJSON(old, r.json) ? 'unchanged' : 'configured' };
    });
    const ops: IRequestOp[] = results.filter((x) => x.outcome !== 'unchanged')
      .map((x) => ({ request_put: { key: Buffer.from(x.resource.key), value: Buffer.from(x.resource.json) } }));
    if (ops.length === 0) return results;
    const res = await client.kv.txn({ compare: [unchangedSince(layout, now.revision)], success: ops });
    if (res.succeeded) return results;
  }
  throw new StoreError('STORE_READ', source, [{ path: '', message: `resources kept changing while applying (${CONFLICT_RETRIES} attempts); nothing was written` }]);
}

function sameJSON(old: KV, json: string): boolean {
  if (old.value === json) return true;
  try {
    return JSON.stringify(JSON.parse(old.value)) === json;
  } catch {
    return false;
  }
}

/** Deletes resources in one transaction; reports which were there. */
export async function deleteResources(client: Etcd3, layout: EtcdLayout, planned: readonly PlannedResource[]): Promise<WriteResult[]> {
  const plan = keyed(layout, planned);
  if (plan.length === 0) return [];
  const res = await client.kv.txn({ success: plan.map((r) => ({ request_delete_range: { key: Buffer.from(r.key) } })) });
  return plan.map((r, i) => ({ resource: r, outcome: Number(res.responses[i].response_delete_range.deleted) > 0 ? 'deleted' : 'not found' }));
}
