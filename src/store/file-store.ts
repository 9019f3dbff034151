// The embedded default store: one YAML cluster file, watched for changes.
//
// Watching: editors and writeClusterFile replace the file (write a temporary file, rename it over),
// which ends a watch on the file itself, so we watch the directory and filter by name. Events
// come in bursts; a short debounce (bounded by a maximum wait, so a steady trickle of events
// cannot starve it) coalesces them into one read. A read whose text equals the current state's is
// not an update. An invalid version goes to onError once and the previous state stays in force.
import { type FSWatcher, watch as fsWatch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { parseClusterText } from './cluster-file.js';
import { StoreError } from './errors.js';
import type { Store, StoreSnapshot } from './store.js';

export { type ClusterFileContent, parseClusterText, toClusterDocument, validateClusterDoc, writeClusterFile } from './cluster-file.js';
export { StoreError } from './errors.js';

export interface FileStoreOptions {
  /** Quiet time after the last event before the file is read (ms). */
  debounceMs?: number;
  /** Upper bound on the delay from the first event of a burst to the read (ms). */
  maxWaitMs?: number;
}

export class FileStore implements Store {
  readonly path: string;
  readonly #debounceMs: number;
  readonly #maxWaitMs: number;
  /** Text of the state last handed out (by load or a watch); the baseline of a new watch. */
  #currentText: string | undefined;
  readonly #stops = new Set<() => void>();

  constructor(path: string, options: FileStoreOptions = {}) {
    this.path = path;
    this.#debounceMs = options.debounceMs ?? 100;
    this.#maxWaitMs = options.maxWaitMs ?? 1000;
  }

  async load(): Promise<StoreSnapshot> {
    const text = await this.#read();
    const snapshot = parseClusterText(text, this.path);
    this.#currentText = text;
    return snapshot;
  }

  /**
   * Reports every later valid version of the file. The file is checked once right away, so a change
   * made between load() and watch() is not lost; without an earlier load() that first check reports
   * the current contents.
   */
  watch(onChange: (s: StoreSnapshot) => void, onError: (e: Error) => void): () => void {
    const name = basename(this.path);
    let timer: NodeJS.Timeout | undefined;
    let burstStart = 0;
    let running = false;
    let again = false;
    let stopped = false;
    let lastBadText: string | undefined; // report each bad version once
    let current = this.#currentText; // per watch, so two watchers each see every change

    const check = async (): Promise<void> => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        do {
          again = false;
          let text: string;
          try {
            text = await this.#read();
          } catch (e) {
            const marker = `\0${(e as StoreError).message}`;
            if (!stopped && lastBadText !== marker) onError(e as Error);
            lastBadText = marker;
            continue;
          }
          if (stopped || text === current) {
            lastBadText = undefined;
            continue;
          }
          let snapshot: StoreSnapshot;
          try {
            snapshot = parseClusterText(text, this.path);
          } catch (e) {
            if (!stopped && lastBadText !== text) onError(e as Error);
            lastBadText = text;
            continue;
          }
          lastBadText = undefined;
          current = text;
          this.#currentText = text;
          onChange(snapshot);
        } while (again && !stopped);
      } finally {
        running = false;
      }
    };

    const schedule = (): void => {
      if (stopped) return;
      const now = Date.now();
      if (timer === undefined) burstStart = now;
      else clearTimeout(timer);
      const wait = Math.max(0, Math.min(this.#debounceMs, burstStart + this.#maxWaitMs - now));
      timer = setTimeout(() => {
        timer = undefined;
        void check();
      }, wait);
    };

    let watcher: FSWatcher | undefined;
    try {
      watcher = fsWatch(dirname(this.path), { persistent: true }, (_event, filename) => {
        // null: the platform did not say which file. `..data`: Kubernetes ConfigMap volumes swap a
        // symlinked directory rather than the file.
        const f = filename === null ? null : String(filename);
        if (f === null || f === name || f.startsWith('..')) schedule();
      });
      watcher.on('error', (e) => onError(new StoreError('STORE_READ', this.path, [{ path: '', message: `watch failed: ${e.message}` }], { cause: e })));
    } catch (e) {
      queueMicrotask(() => onError(new StoreError('STORE_READ', this.path, [{ path: '', message: `cannot watch ${dirname(this.path)}: ${(e as Error).message}` }], { cause: e })));
    }
    schedule();

    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      watcher?.close();
      this.#stops.delete(stop);
    };
    this.#stops.add(stop);
    return stop;
  }

  async close(): Promise<void> {
    for (const stop of [...this.#stops]) stop();
  }

  async #read(): Promise<string> {
    try {
      return await readFile(this.path, 'utf8');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const why = err.code === 'ENOENT' ? 'file not found' : err.code === 'EACCES' ? 'permission denied' : err.message;
      throw new StoreError('STORE_READ', this.path, [{ path: '', message: `cannot read: ${why}` }], { cause: e });
    }
  }
}
