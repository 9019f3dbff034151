// `lab up`: plan everything first (pure, fails before anything exists), then create in order —
// state dir, underlay, hosts, pods, cluster.yaml, daemons — recording each thing before making it.
// With --store etcd, etcd and the pods' addresses come after the namespaces (up-etcd.ts).
// Any failure (or abort) tears down what was made.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeClusterFile } from '../store/cluster-file.js';
import { DEFAULT_CLI_PATH, type StartedDaemon, startDaemon, storeArgs, waitReady } from './daemons.js';
import { labDown } from './down.js';
import { LabError } from './errors.js';
import { loadManifestPaths } from './manifests.js';
import { checkLabName, netnsPrefix } from './names.js';
import { planLab } from './plan.js';
import { createPod } from './pods.js';
import { requireIp, requireRoot } from './preflight.js';
import { listNetns } from './run.js';
import { DEFAULT_STATE_ROOT, type LabLink, type LabState, claimStateDir, saveState } from './state.js';
import { createHost, createUnderlay } from './underlay.js';
import { upEtcd } from './up-etcd.js';

export interface UpOptions {
  name: string;
  hosts: number;
  backend: 'vxlan' | 'udp';
  ipv6: boolean;
  /** -f paths; empty for the demo workloads. */
  files: readonly string[];
  /** false: build namespaces, underlay, pods and cluster.yaml only. */
  daemons: boolean;
  /** Extra flags for every daemon (`--daemon-arg`), e.g. --policy-mode inline. */
  daemonArgs?: readonly string[];
  /** Where the daemons read the cluster (default 'file': cluster.yaml). */
  store?: 'file' | 'etcd';
  /** store 'etcd': use this etcd (reachable from the host namespaces) instead of starting one. */
  etcdUrl?: string;
  readyTimeoutMs?: number;
  stateRoot?: string;
  cliPath?: string;
  log?: (msg: string) => void;
  signal?: AbortSignal;
}

export async function labUp(o: UpOptions): Promise<LabState> {
  const name = checkLabName(o.name);
  const root = o.stateRoot ?? DEFAULT_STATE_ROOT;
  const log = o.log ?? (() => {});
  requireRoot('up');
  await requireIp();

  const store = o.store ?? 'file';
  if (store === 'etcd' && !o.daemons) {
    throw new LabError('--no-daemons needs --store file: in an etcd lab the pods get their addresses from the subnets the daemons lease');
  }
  if (store === 'file' && o.etcdUrl !== undefined) throw new LabError('--etcd needs --store etcd');
  const docs = o.files.length > 0 ? await loadManifestPaths(o.files) : undefined;
  const plan = planLab({ name, hosts: o.hosts, backend: o.backend, ipv6: o.ipv6, docs, store });

  const leftovers = (await listNetns()).filter((n) => n.startsWith(netnsPrefix(name)));
  const stateDir = claimStateDir(root, name);
  if (leftovers.length > 0) {
    // Namespaces of a crashed lab whose state dir is gone: ours would collide with them.
    rmSync(stateDir, { recursive: true, force: true });
    throw new LabError(`lab ${name} already exists (namespaces ${leftovers.join(', ')}); run \`sluice lab down${name === 'sluice' ? '' : ` --name ${name}`}\` first`);
  }
  const state: LabState = {
    version: 1,
    name,
    createdAt: new Date().toISOString(),
    stateDir,
    // An etcd lab keeps the manifests it applied (pods with their leased addresses) instead.
    clusterFile: join(stateDir, store === 'etcd' ? 'manifests.yaml' : 'cluster.yaml'),
    cliPath: o.cliPath ?? DEFAULT_CLI_PATH,
    backend: o.backend,
    ipv6: o.ipv6,
    store,
    daemonArgs: [...(o.daemonArgs ?? [])],
    netns: [],
    links: [],
    hosts: plan.hosts,
    pods: plan.pods,
    daemons: [],
    complete: false,
  };
  saveState(state);

  const record = (ns: string): void => {
    state.netns.push(ns);
    saveState(state);
  };
  const recordLink = (link: LabLink): void => {
    state.links.push(link);
    saveState(state);
  };
  const started: StartedDaemon[] = [];
  try {
    log(`creating underlay ${plan.underlayNetns} and ${plan.hosts.length} host(s)`);
    await createUnderlay(plan.underlayNetns, record, recordLink);
    for (const h of plan.hosts) {
      o.signal?.throwIfAborted();
      await createHost(plan.underlayNetns, h, plan.underlayPrefix, record, recordLink);
    }
    log(`creating ${plan.pods.length} pod namespace(s)`);
    for (const p of plan.pods) {
      o.signal?.throwIfAborted();
      await createPod(p, record);
    }
    if (store === 'etcd') {
      await upEtcd(state, plan, { etcdUrl: o.etcdUrl, daemonArgs: o.daemonArgs, readyTimeoutMs: o.readyTimeoutMs ?? 20_000, log, signal: o.signal },
        () => saveState(state), started);
    } else {
      await writeClusterFile(state.clusterFile, plan.cluster);
    }

    if (o.daemons && store === 'file') {
      for (const h of plan.hosts) {
        o.signal?.throwIfAborted();
        const d = startDaemon(stateDir, state.cliPath, storeArgs(state, h), h, o.daemonArgs);
        started.push(d);
        state.daemons.push(d.daemon);
        saveState(state);
        log(`started daemon ${h.name} (pid ${d.daemon.pid}, log ${d.daemon.log})`);
      }
      await waitReady(started, o.readyTimeoutMs ?? 20_000, o.signal);
    }
    state.complete = true;
    saveState(state);
    return state;
  } catch (e) {
    log(`lab up failed; tearing down lab ${name}`);
    await labDown({ name, stateRoot: root, log });
    if (o.signal?.aborted === true) throw new LabError(`lab up interrupted; lab ${name} removed`, 130, { cause: e });
    throw e;
  }
}
