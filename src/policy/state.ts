// The current policy state: resources + compiled snapshot + generation. replace() is
// all-or-nothing: a set with any invalid manifest throws ManifestError before anything
// changes, so the previous snapshot (and generation) stay in force.

import { compile } from './compiler.js';
import { EMPTY_RESOURCES, buildResourceSet, type LoadOptions, type ManifestDocument } from './manifests.js';
import type { ResourceSet } from './model.js';
import type { PolicySnapshot } from './snapshot.js';

export class PolicyState {
  #resources: ResourceSet = EMPTY_RESOURCES;
  #snapshot: PolicySnapshot;

  constructor(initialGeneration = 0) {
    this.#snapshot = compile(EMPTY_RESOURCES, { generation: initialGeneration });
  }

  get resources(): ResourceSet { return this.#resources; }
  get snapshot(): PolicySnapshot { return this.#snapshot; }
  get generation(): number { return this.#snapshot.generation; }

  /** Validates and compiles the new set, then swaps it in with generation + 1. */
  replace(input: readonly ManifestDocument[] | ResourceSet, opts: LoadOptions = {}): PolicySnapshot {
    const set = 'pods' in input ? input : buildResourceSet(input, opts);
    const snapshot = compile(set, { generation: this.#snapshot.generation + 1 });
    this.#resources = set;
    this.#snapshot = snapshot;
    return snapshot;
  }
}
