// What `lab up` and `lab status` print: a JSON document for scripts, or a short table for people.
import { table } from '../api/table.js';
import type { LabState } from './state.js';
import type { LabStatus } from './status.js';

export interface LabSummaryJson {
  name: string;
  backend: 'vxlan' | 'udp';
  stateDir: string;
  /** Where the daemons read the cluster. */
  store: 'file' | 'etcd';
  /** store 'file': what the daemons read. */
  clusterFile?: string;
  /** store 'etcd': the manifests the lab applied, pods with their leased addresses. */
  manifestsFile?: string;
  /**
   * store 'etcd': `url` is what the hosts use, reachable from `netns` (run `sluice apply/get` there:
   * `ip netns exec <netns> sluice apply --etcd <url> -f x.yaml`); `localUrl` works from anywhere on
   * this machine. `pid` when the lab started this etcd.
   */
  etcd?: { url: string; localUrl: string; netns?: string; pid?: number; log?: string; running?: boolean };
  hosts: Array<{ name: string; netns: string; underlayIP: string; subnet: string; ipv6Subnet?: string }>;
  pods: Array<{ name: string; host: string; netns: string; ip: string; ipv6?: string }>;
  daemons: Array<{ host: string; pid: number; log: string; running?: boolean }>;
}

export function summaryJson(state: LabState, status?: LabStatus): LabSummaryJson {
  return {
    name: state.name,
    backend: state.backend,
    stateDir: state.stateDir,
    store: state.store ?? 'file',
    ...(state.store === 'etcd' ? { manifestsFile: state.clusterFile, etcd: etcdJson(state, status) } : { clusterFile: state.clusterFile }),
    hosts: state.hosts.map((h) => ({
      name: h.name, netns: h.netns, underlayIP: h.underlayIP, subnet: h.subnet,
      ...(h.ipv6Subnet !== undefined ? { ipv6Subnet: h.ipv6Subnet } : {}),
    })),
    pods: state.pods.map((p) => ({
      name: `${p.namespace}/${p.name}`, host: p.host, netns: p.netns, ip: p.ip,
      ...(p.ipv6 !== undefined ? { ipv6: p.ipv6 } : {}),
    })),
    daemons: state.daemons.map((d) => ({
      host: d.host, pid: d.pid, log: d.log,
      ...(status !== undefined ? { running: status.daemons.find((s) => s.pid === d.pid)?.running ?? false } : {}),
    })),
  };
}

function etcdJson(state: LabState, status?: LabStatus): LabSummaryJson['etcd'] {
  const e = state.etcd;
  if (e === undefined) return undefined;
  return {
    url: e.url, localUrl: e.localUrl,
    ...(e.netns !== undefined ? { netns: e.netns } : {}),
    ...(e.process !== undefined ? { pid: e.process.pid, log: e.process.log } : {}),
    ...(status?.etcd !== undefined ? { running: status.etcd.running } : {}),
  };
}

export function summaryText(state: LabState, status?: LabStatus): string {
  const nameFlag = state.name === 'sluice' ? '' : ` --name ${state.name}`;
  const daemonOf = (host: string): string => {
    const d = state.daemons.find((x) => x.host === host);
    if (d === undefined) return '-';
    const running = status?.daemons.find((s) => s.pid === d.pid)?.running;
    return `pid ${d.pid}${running === false ? ' (not running)' : ''}`;
  };
  const lines = [
    `lab ${state.name}: ${state.hosts.length} host(s), ${state.pods.length} pod(s), backend ${state.backend}${state.complete ? '' : ' (incomplete)'}`,
    `state: ${state.stateDir}`,
    ...etcdLines(state, status),
    '',
    table([
      ['HOST', 'NETNS', 'UNDERLAY', 'SUBNET', 'DAEMON'],
      ...state.hosts.map((h) => [h.name, h.netns, h.underlayIP, h.subnet + (h.ipv6Subnet !== undefined ? ` ${h.ipv6Subnet}` : ''), daemonOf(h.name)]),
    ]),
    '',
    table([
      ['POD', 'HOST', 'IP', 'NETNS'],
      ...state.pods.map((p) => [`${p.namespace}/${p.name}`, p.host, p.ip + (p.ipv6 !== undefined ? ` ${p.ipv6}` : ''), p.netns]),
    ]),
  ];
  if (status !== undefined && status.missingNetns.length > 0) lines.push('', `missing namespaces: ${status.missingNetns.join(', ')}`);
  if (status !== undefined && status.strayNetns.length > 0) lines.push('', `unrecorded namespaces: ${status.strayNetns.join(', ')}`);
  const from = state.pods[0];
  const to = state.pods.find((p) => p.host !== from?.host) ?? state.pods[1];
  lines.push('');
  if (from !== undefined && to !== undefined) {
    lines.push(`try:       sluice lab exec${nameFlag} ${from.namespace}/${from.name} -- ping -c 3 ${to.ip}`);
  }
  if (state.store === 'etcd' && state.etcd !== undefined) {
    lines.push(`policies:  sluice apply --etcd ${state.etcd.localUrl} -f policy.yaml   (or sluice get hosts|endpoints|policies, sluice delete -f)`);
  }
  lines.push(`tear down: sluice lab down${nameFlag}`);
  return lines.join('\n');
}

function etcdLines(state: LabState, status?: LabStatus): string[] {
  const e = state.etcd;
  if (state.store !== 'etcd' || e === undefined) return [];
  const pid = e.process === undefined ? '' : `, pid ${e.process.pid}${status?.etcd?.running === false ? ' (not running)' : ''}`;
  return [
    `etcd:  ${e.url}${e.netns !== undefined ? ` (from ${e.netns}${pid})` : pid}`,
    ...(e.localUrl !== e.url ? [`       ${e.localUrl} (from anywhere on this machine)`] : []),
  ];
}
