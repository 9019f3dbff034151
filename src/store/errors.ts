// Errors of the control plane. Classification (see STYLE.md lesson 9):
//  - STORE_INVALID: the data is wrong (bad field). Fatal at startup; during a watch the update is
//    rejected, reported through onError, and the previous state stays in force.
//  - STORE_PARSE: the file is not valid YAML. Same handling as STORE_INVALID.
//  - STORE_READ: the file cannot be read (missing, permissions). Fatal at startup; transient during
//    a watch (the next change event retries).

export type StoreErrorCode = 'STORE_INVALID' | 'STORE_PARSE' | 'STORE_READ';

/** One problem, located by a field path such as `hosts[1].subnet`. */
export interface StoreIssue {
  path: string;
  message: string;
}

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  /** The file (or other source) the data came from, as given by the caller. */
  readonly source: string;
  readonly issues: readonly StoreIssue[];

  constructor(code: StoreErrorCode, source: string, issues: StoreIssue[], options?: { cause?: unknown }) {
    super(issues.map((i) => formatIssue(source, i)).join('\n'), options);
    this.name = 'StoreError';
    this.code = code;
    this.source = source;
    this.issues = issues;
  }
}

/** `cluster.yaml: hosts[1].subnet: 10.245.1.0/24 is not inside network 10.244.0.0/16` */
export function formatIssue(source: string, issue: StoreIssue): string {
  return issue.path === '' ? `${source}: ${issue.message}` : `${source}: ${issue.path}: ${issue.message}`;
}

/** Renders a zod-style path (`['hosts', 1, 'subnet']`) as `hosts[1].subnet`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else {
      const s = String(p);
      // Keys like `sluice.io/netns` are quoted so the path stays unambiguous.
      const plain = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(s);
      if (!plain) out += `[${JSON.stringify(s)}]`;
      else out += out === '' ? s : `.${s}`;
    }
  }
  return out;
}
