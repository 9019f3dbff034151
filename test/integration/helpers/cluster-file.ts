// Writes the cluster YAML a Sluice daemon reads (see src/store/config-schema.ts): the network,
// the hosts (Sluice hosts and static peers alike) and one Pod manifest per workload.
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';

export interface ClusterHost {
  name: string;
  publicIP: string;
  subnet: string;
  vtepMAC: string;
}

export interface ClusterPod {
  name: string;
  host: string;
  ip: string;
  /** Network namespace the daemon moves the pod's TUN into. */
  netns: string;
}

export interface ClusterSpec {
  network: string;
  subnetLen: number;
  backend: 'vxlan' | 'udp';
  hosts: readonly ClusterHost[];
  pods: readonly ClusterPod[];
  namespace?: string;
}

export function clusterYaml(s: ClusterSpec): string {
  const ns = s.namespace ?? 'demo';
  return stringify({
    network: { Network: s.network, SubnetLen: s.subnetLen, Backend: { Type: s.backend } },
    hosts: s.hosts.map((h) => ({ ...h })),
    manifests: [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
      ...s.pods.map((p) => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: p.name, namespace: ns, annotations: { 'sluice.io/netns': p.netns } },
        spec: { nodeName: p.host },
        status: { podIP: p.ip },
      })),
    ],
  });
}

export function writeClusterFile(path: string, s: ClusterSpec): void {
  writeFileSync(path, clusterYaml(s));
}
