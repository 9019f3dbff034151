// The lab's record of what it created, in /run/sluice-lab/<name>/state.json. Everything is
// recorded *before* it is created, so a crash at any point leaves a record that `lab down` can
// use; deleting something that was never created is harmless.
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from './errors.js';

export const DEFAULT_STATE_ROOT = '/run/sluice-lab';

export interface LabHost {
  name: string;
  netns: string;
  underlayIP: string;
  subnet: string;
  ipv6Subnet?: string;
  vtepMAC: string;
}

export interface LabPod {
  namespace: string;
  name: string;
  host: string;
  netns: string;
  ip: string;
  ipv6?: string;
}

export interface LabLink {
  netns: string;
  name: string;
  kind: 'bridge' | 'veth';
  /** veth only: the other end, `netns/name`. */
  peer?: string;
}

export interface LabDaemon {
  host: string;
  pid: number;
  /** /proc/<pid>/stat start time (clock ticks since boot): tells our process from a reused PID. */
  startTime: number;
  log: string;
}

/** The etcd of a `--store etcd` lab. */
export interface LabEtcd {
  /** What the daemons are given (`--etcd`). */
  url: string;
  /** A URL that works from this machine's root namespace (the lab itself uses it). */
  localUrl: string;
  /** Namespace from which `url` is reachable, when it is not reachable from everywhere. */
  netns?: string;
  /** Set when the lab started this etcd (absent with `--etcd URL`): `lab down` stops it. */
  process?: LabEtcdProcess;
}

export interface LabEtcdProcess {
  pid: number;
  /** As LabDaemon.startTime: tells our etcd from a reused PID. */
  startTime: number;
  binary: string;
  dataDir: string;
  /** Where it listens, in `netns`; also its unix socket in `socketDir`. */
  address: string;
  clientPort: number;
  peerPort: number;
  socketDir: string;
  log: string;
}

export interface LabState {
  version: 1;
  name: string;
  createdAt: string;
  stateDir: string;
  clusterFile: string;
  /** The CLI the daemons run; part of how `down` recognises them. */
  cliPath: string;
  backend: 'vxlan' | 'udp';
  ipv6: boolean;
  /**
   * Where the daemons read the cluster: the file store (clusterFile; absent in states written before
   * etcd labs existed) or etcd, where clusterFile records what the lab applied.
   */
  store?: 'file' | 'etcd';
  etcd?: LabEtcd;
  /** The user's extra daemon flags (`--daemon-arg`), so a daemon can be restarted as it was started. */
  daemonArgs?: string[];
  /** Every namespace created (or about to be), in creation order. */
  netns: string[];
  /** Every link created, for the record: they all live in lab namespaces and go with them. */
  links: LabLink[];
  hosts: LabHost[];
  pods: LabPod[];
  daemons: LabDaemon[];
  /** True once `up` finished. */
  complete: boolean;
}

export const stateDirOf = (root: string, name: string): string => join(root, name);
export const stateFileOf = (dir: string): string => join(dir, 'state.json');

/** Writes state.json atomically. */
export function saveState(state: LabState): void {
  const file = stateFileOf(state.stateDir);
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
  renameSync(tmp, file);
}

/** Reads a lab's state; undefined when there is no state file. */
export function loadState(root: string, name: string): LabState | undefined {
  const file = stateFileOf(stateDirOf(root, name));
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LabError(`cannot read ${file}: ${(e as Error).message}`, 1, { cause: e });
  }
  let state: LabState;
  try {
    state = JSON.parse(text) as LabState;
  } catch (e) {
    throw new LabError(`${file} is corrupt (${(e as Error).message}); \`sluice lab down --name ${name}\` still cleans up by name`, 1, { cause: e });
  }
  if (state.version !== 1 || state.name !== name || !Array.isArray(state.netns)) {
    throw new LabError(`${file} is not a sluice lab state file (version ${String(state.version)})`);
  }
  return state;
}

/** Creates the state directory; fails if it exists (that is the lock against two `up`s). */
export function claimStateDir(root: string, name: string): string {
  mkdirSync(root, { recursive: true, mode: 0o755 });
  const dir = stateDirOf(root, name);
  try {
    mkdirSync(dir, { mode: 0o755 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new LabError(`lab ${name} already exists (state in ${dir}); run \`sluice lab down${name === 'sluice' ? '' : ` --name ${name}`}\` first`);
    }
    throw e;
  }
  return dir;
}

/** Names of labs that have a state directory. */
export function listLabs(root: string): string[] {
  try {
    return readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}
