// `lab status`: the recorded lab compared with what is really there.
import { daemonNeedles } from './daemons.js';
import { etcdRunning } from './etcd.js';
import { netnsPrefix } from './names.js';
import { isSameProcess } from './procs.js';
import { listNetns } from './run.js';
import { DEFAULT_STATE_ROOT, type LabState, loadState } from './state.js';

export interface LabStatus {
  state: LabState;
  /** Recorded namespaces that no longer exist. */
  missingNetns: string[];
  /** Namespaces with the lab's prefix that the state does not record. */
  strayNetns: string[];
  daemons: Array<{ host: string; pid: number; running: boolean; log: string }>;
  /** The lab's own etcd, if it started one. */
  etcd?: { pid: number; running: boolean };
}

/** undefined when no lab of that name has a state file. */
export async function labStatus(name: string, stateRoot = DEFAULT_STATE_ROOT): Promise<LabStatus | undefined> {
  const state = loadState(stateRoot, name);
  if (state === undefined) return undefined;
  const existing = new Set(await listNetns());
  return {
    state,
    missingNetns: state.netns.filter((n) => !existing.has(n)),
    strayNetns: [...existing].filter((n) => n.startsWith(netnsPrefix(name)) && !state.netns.includes(n)),
    daemons: state.daemons.map((d) => ({
      host: d.host,
      pid: d.pid,
      running: isSameProcess(d.pid, d.startTime, daemonNeedles(state, d.host)),
      log: d.log,
    })),
    ...(state.etcd?.process !== undefined ? { etcd: { pid: state.etcd.process.pid, running: etcdRunning(state.etcd.process) } } : {}),
  };
}
