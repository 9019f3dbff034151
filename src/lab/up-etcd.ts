// `lab up --store etcd`, once the namespaces exist (up.ts): the cluster goes into etcd, and the
// daemons lease their subnets before any pod has an address.
//
//   1 etcd: the lab's own (etcd.ts), or the one --etcd names
//   2 write the network config and every manifest but the pods (namespaces, policies)
//   3 start the daemons (--store etcd): each acquires its subnet lease, then is ready
//   4 read the leases; re-address hosts and pods into the leased subnets (leased.ts)
//   5 apply the pods (also kept in <state dir>/manifests.yaml); each daemon sees its own pods
//     in its watch and makes their endpoints
//   6 wait until every pod namespace has its address
//
// Why not reserve the subnets up front: a reservation is a subnet key without an etcd lease, which a
// daemon takes as it is — nothing would be acquired, kept alive or re-acquired, and the lab would
// not run hosts the way a cluster does.
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { ManifestError } from '../policy/errors.js';
import { EtcdStore } from '../store/etcd-store.js';
import { type StartedDaemon, startDaemon, storeArgs, tail, waitReady } from './daemons.js';
import { LabError } from './errors.js';
import { startLabEtcd } from './etcd.js';
import { readdress } from './leased.js';
import type { LabPlan } from './plan.js';
import { ip } from './run.js';
import type { LabPod, LabState } from './state.js';

export interface EtcdUpOptions {
  /** Use this etcd instead of starting one. */
  etcdUrl?: string;
  daemonArgs?: readonly string[];
  readyTimeoutMs: number;
  log: (msg: string) => void;
  signal?: AbortSignal;
}

const isPod = (m: unknown): boolean => (m as { kind?: unknown }).kind === 'Pod' && (m as { apiVersion?: unknown }).apiVersion === 'v1';

export async function upEtcd(state: LabState, plan: LabPlan, o: EtcdUpOptions, save: () => void, started: StartedDaemon[]): Promise<void> {
  if (o.etcdUrl !== undefined) {
    state.etcd = { url: o.etcdUrl, localUrl: o.etcdUrl };
    save();
  } else {
    o.log(`starting etcd in ${plan.underlayNetns} on ${plan.etcdIP}`);
    await startLabEtcd(state, plan.underlayNetns, plan.etcdIP as string, plan.underlayPrefix, (e) => {
      state.etcd = e;
      save();
    });
  }
  const etcd = state.etcd!;
  const store = new EtcdStore({ endpoints: etcd.localUrl });
  try {
    await store.writeConfig(plan.cluster.config);
    await apply(store, plan.cluster.manifests.filter((m) => !isPod(m)));

    for (const h of state.hosts) {
      o.signal?.throwIfAborted();
      const d = startDaemon(state.stateDir, state.cliPath, storeArgs(state, h), h, o.daemonArgs);
      started.push(d);
      state.daemons.push(d.daemon);
      save();
      o.log(`started daemon ${h.name} (pid ${d.daemon.pid}, log ${d.daemon.log})`);
    }
    await waitReady(started, o.readyTimeoutMs, o.signal);

    const leased = readdress(plan, (await store.load()).hosts);
    state.hosts = leased.hosts;
    state.pods = leased.pods;
    save();
    o.log(`subnets leased: ${state.hosts.map((h) => `${h.name} ${h.subnet}`).join(', ')}`);
    await writeFile(state.clusterFile, leased.manifests.map((m) => stringify(m)).join('---\n'), { mode: 0o644 });
    await apply(store, leased.manifests.filter(isPod));
    await waitPodAddresses(state, started, o.readyTimeoutMs, o.signal);
  } finally {
    await store.close();
  }
}

async function apply(store: EtcdStore, manifests: readonly unknown[]): Promise<void> {
  if (manifests.length === 0) return;
  try {
    await store.applyManifests(manifests, 'lab manifests');
  } catch (e) {
    if (e instanceof ManifestError) throw new LabError(`invalid manifests:\n  ${e.message.split('\n').join('\n  ')}`, 1, { cause: e });
    throw e;
  }
}

/** Waits until every pod's namespace has its IPv4 address: its daemon made the endpoint. */
export async function waitPodAddresses(state: LabState, daemons: readonly StartedDaemon[], timeoutMs: number, signal?: AbortSignal,
  pods: readonly LabPod[] = state.pods): Promise<void> {
  const end = Date.now() + timeoutMs;
  let waiting = [...pods];
  for (;;) {
    signal?.throwIfAborted();
    const still: LabPod[] = [];
    for (const p of waiting) if (!(await hasAddress(p))) still.push(p);
    waiting = still;
    if (waiting.length === 0) return;
    const dead = daemons.find((d) => d.exit !== undefined && waiting.some((p) => p.host === d.daemon.host));
    if (dead !== undefined) {
      throw new LabError(`host ${dead.daemon.host}: the daemon ${dead.exit}; last lines of ${dead.daemon.log}:\n${tail(dead.daemon.log, 20)}`);
    }
    if (Date.now() >= end) {
      const p = waiting[0];
      const log = state.daemons.find((d) => d.host === p.host)?.log ?? '';
      throw new LabError(`pod ${p.namespace}/${p.name} (${p.ip}) got no endpoint from host ${p.host} within ${Math.round(timeoutMs / 1000)} s` +
        `${waiting.length > 1 ? ` (nor ${waiting.length - 1} other pod(s))` : ''}; last lines of ${log}:\n${tail(log, 20)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function hasAddress(p: LabPod): Promise<boolean> {
  try {
    const { stdout } = await ip('-n', p.netns, '-4', '-o', 'addr', 'show');
    return stdout.includes(` inet ${p.ip}/`);
  } catch {
    return false;
  }
}
