// `lab restart TARGET...`: stop a host's daemon (only if its PID still is that daemon) and start it
// again with the flags it was started with, then wait until it is ready and its pods have their
// addresses again; or stop and start the lab's own etcd on its data dir. What a supervisor would
// do, and how the tests make a host restart or an etcd outage on purpose.
import { rmSync } from 'node:fs';
import { daemonNeedles, readyFileOf, startDaemon, storeArgs, waitReady } from './daemons.js';
import { LabError } from './errors.js';
import { restartLabEtcd } from './etcd.js';
import { requireLab } from './exec.js';
import { isSameProcess, terminate } from './procs.js';
import { DEFAULT_STATE_ROOT, type LabState, saveState } from './state.js';
import { waitPodAddresses } from './up-etcd.js';

export interface RestartOptions {
  stateRoot?: string;
  readyTimeoutMs?: number;
  /** Time a process gets between SIGTERM and SIGKILL. */
  graceMs?: number;
  log?: (msg: string) => void;
}

/** Restarts each target in order: a host name (its daemon) or `etcd`. */
export async function labRestart(name: string, targets: readonly string[], o: RestartOptions = {}): Promise<LabState> {
  const state = requireLab(name, o.stateRoot ?? DEFAULT_STATE_ROOT);
  const log = o.log ?? (() => {});
  for (const t of targets) {
    if (t !== 'etcd' && !state.hosts.some((h) => h.name === t)) {
      throw new LabError(`lab ${name} has no host ${t} (hosts: ${state.hosts.map((h) => h.name).join(', ')}; or etcd)`);
    }
  }
  for (const t of targets) {
    if (t === 'etcd') {
      const e = await restartLabEtcd(state, (rec) => { state.etcd = rec; saveState(state); }, o.graceMs);
      log(`etcd restarted (pid ${e.process?.pid})`);
    } else {
      await restartDaemon(state, t, o, log);
    }
  }
  return state;
}

async function restartDaemon(state: LabState, host: string, o: RestartOptions, log: (msg: string) => void): Promise<void> {
  const h = state.hosts.find((x) => x.name === host)!;
  const old = state.daemons.find((d) => d.host === host);
  if (old !== undefined && isSameProcess(old.pid, old.startTime, daemonNeedles(state, host))) {
    log(`stopping daemon ${host} (pid ${old.pid})`);
    const r = await terminate(old.pid, o.graceMs ?? 5000);
    if (r === 'stuck') throw new LabError(`daemon ${host} (pid ${old.pid}) did not exit after SIGKILL`);
  }
  // A killed daemon leaves its ready file behind; the new one must write its own.
  rmSync(readyFileOf(state.stateDir, host), { force: true });
  const d = startDaemon(state.stateDir, state.cliPath, storeArgs(state, h), h, state.daemonArgs ?? []);
  state.daemons = old === undefined ? [...state.daemons, d.daemon] : state.daemons.map((x) => (x.host === host ? d.daemon : x));
  saveState(state);
  log(`started daemon ${host} (pid ${d.daemon.pid}, log ${d.daemon.log})`);
  const timeout = o.readyTimeoutMs ?? 20_000;
  await waitReady([d], timeout);
  await waitPodAddresses(state, [d], timeout, undefined, state.pods.filter((p) => p.host === host));
}
