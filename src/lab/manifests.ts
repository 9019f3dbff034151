// Reading workload manifests for `lab up -f`: files or directories (their *.yaml, *.yml, *.json,
// not recursive, like kubectl), multi-document YAML, and `kind: List` expanded into its items.
import { readFile, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { LabError } from './errors.js';

export interface SourcedDoc {
  doc: Record<string, unknown>;
  /** `file.yaml: document 2` (or `... item 3` inside a List), for messages. */
  where: string;
}

const MANIFEST_EXT = new Set(['.yaml', '.yml', '.json']);

export async function loadManifestPaths(paths: readonly string[]): Promise<SourcedDoc[]> {
  const out: SourcedDoc[] = [];
  for (const p of paths) {
    let st;
    try {
      st = await stat(p);
    } catch (e) {
      throw new LabError(`-f ${p}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
    }
    if (st.isDirectory()) {
      const files = (await readdir(p)).filter((f) => MANIFEST_EXT.has(extname(f))).sort();
      if (files.length === 0) throw new LabError(`-f ${p}: the directory has no .yaml, .yml or .json files`);
      for (const f of files) out.push(...(await loadManifestFile(join(p, f))));
    } else {
      out.push(...(await loadManifestFile(p)));
    }
  }
  return out;
}

export async function loadManifestFile(file: string): Promise<SourcedDoc[]> {
  const text = await readFile(file, 'utf8');
  return parseManifestText(text, file);
}

export function parseManifestText(text: string, file: string): SourcedDoc[] {
  const out: SourcedDoc[] = [];
  const docs = parseAllDocuments(text, { prettyErrors: true });
  if (!Array.isArray(docs)) return out; // only comments / empty stream
  docs.forEach((d, i) => {
    const where = `${file}: document ${i + 1}`;
    if (d.errors.length > 0) {
      const e = d.errors[0];
      throw new LabError(`${where}: line ${e.linePos?.[0].line ?? '?'}: ${e.message.split('\n')[0]}`);
    }
    let value: unknown;
    try {
      value = d.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw new LabError(`${where}: ${(e as Error).message}`); // unresolved or excessive aliases
    }
    if (value === null || value === undefined) return; // empty document ("---" at the end)
    add(value, where, out);
  });
  return out;
}

function add(value: unknown, where: string, out: SourcedDoc[]): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new LabError(`${where}: expected a Kubernetes object (a mapping with apiVersion, kind, metadata)`);
  }
  const doc = value as Record<string, unknown>;
  if (doc.kind === 'List' && Array.isArray(doc.items)) {
    doc.items.forEach((item: unknown, j: number) => add(item, `${where} item ${j + 1}`, out));
    return;
  }
  const meta = doc.metadata as Record<string, unknown> | undefined;
  if (typeof doc.apiVersion !== 'string' || typeof doc.kind !== 'string' || typeof meta !== 'object' || meta === null || typeof meta.name !== 'string' || meta.name === '') {
    throw new LabError(`${where}: expected a Kubernetes object with apiVersion, kind and metadata.name`);
  }
  out.push({ doc, where });
}
