// The systems the throughput bench compares, each a pair of hosts with one pod apiece, all on one
// underlay bridge so they share the same "wire":
//
//   ul: br0 ─┬─ sv-h1 10.99.0.1 ─ sv-h2 10.99.0.2   Sluice, vxlan backend
//            ├─ su-h1 10.99.0.3 ─ su-h2 10.99.0.4   Sluice, udp backend
//            └─ kv-h1 10.99.0.5 ─ kv-h2 10.99.0.6   kernel VXLAN, configured as Flannel does
//
// (namespace names carry the run's prefix, slbn-<pid>-, and pods are <tag>-p1 / <tag>-p2)
//
// Every pair uses the same overlay (10.244.0.0/16, pods 10.244.1.2 on h1 and 10.244.2.2 on h2);
// they never meet because each pair lives in its own namespaces.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { addKernelPod, setupKernelVxlanHost } from '../src/lab/kernel-vxlan.js';
import type { HostRecord, NetworkConfig } from '../src/store/store.js';
import { writeClusterFile } from '../test/integration/helpers/cluster-file.js';
import { startDaemon } from '../test/integration/helpers/daemon.js';
import { addNetns, attachToUnderlay } from '../test/integration/helpers/netns.js';
import type { Proc } from '../test/integration/helpers/process.js';
import type { Scope } from '../test/integration/helpers/scope.js';

export const SYSTEM_KINDS = ['sluice-vxlan', 'sluice-udp', 'kernel-vxlan'] as const;
export type SystemKind = (typeof SYSTEM_KINDS)[number];

const TAG: Record<SystemKind, string> = { 'sluice-vxlan': 'sv', 'sluice-udp': 'su', 'kernel-vxlan': 'kv' };
const POD_IPS = ['10.244.1.2', '10.244.2.2'] as const;

export interface Pod {
  netns: string;
  ip: string;
}

export interface BenchSystem {
  kind: SystemKind;
  /** pods[0] on h1 (client side), pods[1] on h2 (server side). */
  pods: [Pod, Pod];
  /** Sluice daemons (h1, h2); empty for the kernel. */
  daemons: Proc[];
}

/** Builds system number `index` (0-based: its underlay addresses are .2i+1 and .2i+2); `names` prefixes its namespaces. */
export async function buildSystem(scope: Scope, kind: SystemKind, index: number, names: string, underlay: string, dir: string): Promise<BenchSystem> {
  const tag = TAG[kind];
  const hosts: HostRecord[] = [1, 2].map((i) => ({
    name: `h${i}`,
    publicIP: `10.99.0.${2 * index + i}`,
    subnet: `10.244.${i}.0/24`,
    vtepMAC: `02:00:0a:f4:0${i}:${(index + 1).toString(16).padStart(2, '0')}`,
  }));
  const hostNs = hosts.map((h) => `${names}${tag}-${h.name}`);
  const pods: [Pod, Pod] = [
    { netns: `${names}${tag}-p1`, ip: POD_IPS[0] },
    { netns: `${names}${tag}-p2`, ip: POD_IPS[1] },
  ];
  for (let i = 0; i < 2; i++) {
    await addNetns(scope, hostNs[i]);
    await attachToUnderlay(underlay, hostNs[i], { port: `${tag}${hosts[i].name}`, address: `${hosts[i].publicIP}/24` });
    await addNetns(scope, pods[i].netns);
  }

  if (kind === 'kernel-vxlan') {
    const config: NetworkConfig = { network: '10.244.0.0/16', subnetLen: 24, backend: { type: 'vxlan', port: 8472, vni: 1 } };
    for (let i = 0; i < 2; i++) {
      const host = await setupKernelVxlanHost({ netns: hostNs[i], self: hosts[i], peers: [hosts[1 - i]], config });
      await addKernelPod(host, { netns: pods[i].netns, ip: pods[i].ip, hostVeth: `vethp${i + 1}` });
    }
    return { kind, pods, daemons: [] };
  }

  const configFile = join(dir, `${tag}.yaml`);
  writeClusterFile(configFile, {
    network: '10.244.0.0/16', subnetLen: 24, backend: kind === 'sluice-udp' ? 'udp' : 'vxlan',
    hosts, pods: pods.map((p, i) => ({ name: `p${i + 1}`, host: hosts[i].name, ip: p.ip, netns: p.netns })),
  });
  const daemons: Proc[] = [];
  mkdirSync(join(dir, tag), { recursive: true }); // ready files: one directory per system, as hosts are h1/h2 in each
  for (let i = 0; i < 2; i++) {
    daemons.push(await startDaemon(scope, { netns: hostNs[i], configFile, host: hosts[i].name, dir: join(dir, tag), logLevel: 'warn' }));
  }
  return { kind, pods, daemons };
}
