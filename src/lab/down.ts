// Tearing a lab down, also after a crash: stop the daemons we started (and only those), then the
// lab's etcd (same checks), stop anything else still running inside the lab's namespaces (an etcd
// started but not yet recorded is in the underlay's), delete every namespace the state file
// records plus any with the lab's prefix (a crash may have left some unrecorded), then the state
// directory. Deleting a namespace removes its veths and TUNs. Safe to repeat.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { EtcdStore } from '../store/etcd-store.js';
import { daemonNeedles } from './daemons.js';
import { LabError } from './errors.js';
import { stopLabEtcd } from './etcd.js';
import { netnsPrefix } from './names.js';
import { isSameProcess, terminate } from './procs.js';
import { deleteNetns, listNetns, netnsPids } from './run.js';
import { DEFAULT_STATE_ROOT, type LabState, loadState, stateDirOf } from './state.js';

export interface DownOptions {
  name: string;
  stateRoot?: string;
  /** Time a process gets between SIGTERM and SIGKILL. */
  graceMs?: number;
  log?: (msg: string) => void;
}

export interface DownResult {
  name: string;
  /** False when there was nothing at all to remove. */
  found: boolean;
  daemons: Array<{ host: string; pid: number; result: string }>;
  /** The lab's own etcd, when it had one: how it was stopped. */
  etcd?: { pid: number; result: string };
  /** Other processes stopped because they were inside a lab namespace. */
  others: number[];
  netnsDeleted: string[];
  stateDirRemoved: boolean;
}

export async function labDown(o: DownOptions): Promise<DownResult> {
  const root = o.stateRoot ?? DEFAULT_STATE_ROOT;
  const log = o.log ?? (() => {});
  const grace = o.graceMs ?? 5000;
  const dir = stateDirOf(root, o.name);
  const res: DownResult = { name: o.name, found: false, daemons: [], others: [], netnsDeleted: [], stateDirRemoved: false };

  let state: LabState | undefined;
  try {
    state = loadState(root, o.name);
  } catch (e) {
    if (!(e instanceof LabError)) throw e;
    log(`warning: ${e.message}; cleaning up by name`);
  }

  // 1. Daemons, identified by PID + start time + command line, so a reused PID is never signalled.
  for (const d of state?.daemons ?? []) {
    if (!isSameProcess(d.pid, d.startTime, daemonNeedles(state!, d.host))) {
      res.daemons.push({ host: d.host, pid: d.pid, result: 'not running' });
      continue;
    }
    log(`stopping daemon ${d.host} (pid ${d.pid})`);
    const result = await terminate(d.pid, grace);
    res.daemons.push({ host: d.host, pid: d.pid, result });
    if (result === 'stuck') log(`warning: daemon ${d.host} (pid ${d.pid}) did not exit after SIGKILL`);
  }

  // 1b. etcd: the lab's own is stopped like the daemons; in someone else's, what the lab applied is deleted.
  const etcd = state?.etcd;
  if (etcd?.process !== undefined) {
    const p = etcd.process;
    if (p.pid > 0) log(`stopping etcd (pid ${p.pid})`);
    res.etcd = { pid: p.pid, result: p.pid > 0 ? await stopLabEtcd(p, grace) : 'not running' };
    if (res.etcd.result === 'stuck') log(`warning: etcd (pid ${p.pid}) did not exit after SIGKILL`);
  } else if (etcd !== undefined && state !== undefined) {
    await forgetManifests(state.clusterFile, etcd.localUrl, log);
  }

  // 2. Every namespace of the lab: recorded ones first (pods, hosts, underlay when reversed), then strays.
  const prefix = netnsPrefix(o.name);
  const existing = await listNetns();
  const recorded = [...(state?.netns ?? [])].reverse();
  const all = [...new Set([...recorded, ...existing.filter((n) => n.startsWith(prefix))])].filter((n) => existing.includes(n));

  // 3. Anything still running inside them (e.g. an iperf3 server started with `lab exec`).
  const self = new Set([process.pid, process.ppid]);
  for (const ns of all) {
    for (const pid of await netnsPids(ns)) {
      if (self.has(pid)) continue;
      log(`stopping pid ${pid} still running in ${ns}`);
      await terminate(pid, Math.min(grace, 2000));
      res.others.push(pid);
    }
  }

  for (const ns of all) {
    if (await deleteNetns(ns)) res.netnsDeleted.push(ns);
  }
  if (existsSync(dir)) {
    rmSync(dir, { recursive: true, force: true });
    res.stateDirRemoved = true;
  }
  res.found = state !== undefined || res.netnsDeleted.length > 0 || res.stateDirRemoved;
  return res;
}

/** Deletes from a shared etcd the manifests an etcd lab applied (best effort: etcd may be gone). */
async function forgetManifests(file: string, url: string, log: (msg: string) => void): Promise<void> {
  let docs: unknown[];
  try {
    docs = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as unknown).filter((d) => d !== null && d !== undefined);
  } catch {
    return; // not written yet: nothing was applied
  }
  const store = new EtcdStore({ endpoints: url });
  try {
    const r = await store.deleteManifests(docs, file);
    log(`deleted ${r.filter((x) => x.outcome === 'deleted').length} resource(s) the lab had applied to ${url}`);
  } catch (e) {
    log(`warning: could not delete the lab's resources from ${url}: ${(e as Error).message}`);
  } finally {
    await store.close();
  }
}
