// Manifest errors. Error policy: loading is all-or-nothing. Every problem found in a
// set of manifests is reported (file, 1-based document index, field path, message)
// in one ManifestError, and nothing is applied. Selector syntax errors keep their column.

export interface ManifestIssue {
  source: string;
  /** 1-based document index within the source (0 when the source itself failed). */
  doc: number;
  /** Field path such as "spec.ingress[0].ports[1].port", or "" for the whole document. */
  path: string;
  message: string;
}

export function formatIssue(i: ManifestIssue): string {
  const where = i.doc > 0 ? `${i.source} doc ${i.doc}` : i.source;
  return i.path ? `${where}: ${i.path}: ${i.message}` : `${where}: ${i.message}`;
}

export class ManifestError extends Error {
  override readonly name = 'ManifestError';
  readonly code = 'POLICY_ERR_MANIFEST';
  constructor(readonly issues: readonly ManifestIssue[]) {
    super(issues.map(formatIssue).join('\n'));
  }
}

/** A semantic problem at a field path inside one document (translators throw it). */
export class FieldError extends Error {
  override readonly name = 'FieldError';
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Appends a key or index to a field path: a.b, a[0], a["app.kubernetes.io/name"]. */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (!IDENT.test(key)) return `${base}[${JSON.stringify(key)}]`;
  return base ? `${base}.${key}` : key;
}
