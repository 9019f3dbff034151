// In-memory twin of the file store, for tests that need a Store without a file system (daemon
// wiring tests, two daemons in one process). Takes the same document shape as the cluster file and
// validates it the same way, so behaviour matches FileStore except for I/O.
import { validateClusterDoc } from './cluster-file.js';
import type { Store, StoreSnapshot } from './store.js';

interface Watcher {
  onChange: (s: StoreSnapshot) => void;
  onError: (e: Error) => void;
  seen: StoreSnapshot | undefined;
}

export class MemoryStore implements Store {
  #snapshot: StoreSnapshot;
  #loaded = false;
  readonly #watchers = new Set<Watcher>();

  /** `doc` is a cluster document ({network, hosts, manifests}); throws StoreError when invalid. */
  constructor(doc: unknown, readonly source = 'memory') {
    this.#snapshot = validateClusterDoc(doc, source);
  }

  async load(): Promise<StoreSnapshot> {
    this.#loaded = true;
    return this.#snapshot;
  }

  /** Same contract as FileStore.watch: without an earlier load(), the current state is reported first. */
  watch(onChange: (s: StoreSnapshot) => void, onError: (e: Error) => void): () => void {
    const w: Watcher = { onChange, onError, seen: this.#loaded ? this.#snapshot : undefined };
    this.#watchers.add(w);
    queueMicrotask(() => {
      if (this.#watchers.has(w) && w.seen !== this.#snapshot) {
        w.seen = this.#snapshot;
        onChange(this.#snapshot);
      }
    });
    return () => this.#watchers.delete(w);
  }

  /** Replaces the state. Invalid: watchers get onError, the state stays, and the error is thrown. */
  update(doc: unknown): StoreSnapshot {
    let next: StoreSnapshot;
    try {
      next = validateClusterDoc(doc, this.source);
    } catch (e) {
      for (const w of this.#watchers) w.onError(e as Error);
      throw e;
    }
    this.#snapshot = next;
    for (const w of this.#watchers) {
      w.seen = next;
      w.onChange(next);
    }
    return next;
  }

  async close(): Promise<void> {
    this.#watchers.clear();
  }
}
