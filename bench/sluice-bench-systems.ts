// The systems `sluice bench` compares: each a pair of hosts (network namespaces on one shared
// underlay bridge) with one pod each, pods 10.244.1.2 (h1) and 10.244.2.2 (h2):
//
//   sluice-vxlan / sluice-udp     two Sluice daemons (this build), the two backends
//   sluice-vxlan-nooffload        the same with SLUICE_OFFLOADS=off (the per-packet path)
//   sluice-vxlan-2t               sluice-vxlan with two datapath threads (--datapath-threads 2)
//   sluice-vxlan-2n               the same with --no-main-fast-path (decided flows only on the native thread)
//   sluice-vxlan-lowlat           the low-latency configuration: sluice-vxlan-2n plus --busy-poll
//   sluice-vxlan-baseline         two daemons of another build (--baseline DIR), for before/after
//   kernel-vxlan                  the kernel's VXLAN wired as Flannel does (src/lab/kernel-vxlan.ts)
//   openvpn / tinc                userspace tunnels, no encryption or authentication, when installed
//
// System i uses underlay addresses 10.99.0.(2i+1) and (2i+2); namespaces are slsb-TAG-{h1,h2,p1,p2}.
// Everything is registered with the Scope, so a failed or interrupted run leaves nothing behind.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DAEMON_NODE_FLAGS } from '../src/daemon/node-flags.js';
import { addKernelPod, setupKernelVxlanHost } from '../src/lab/kernel-vxlan.js';
import type { HostRecord, NetworkConfig } from '../src/store/store.js';
import { writeClusterFile } from '../test/integration/helpers/cluster-file.js';
import { CLI_PATH } from '../test/integration/helpers/daemon.js';
import { inNetns, run, sleep } from '../test/integration/helpers/exec.js';
import { addNetns, attachToUnderlay } from '../test/integration/helpers/netns.js';
import { Proc, describe } from '../test/integration/helpers/process.js';
import type { Scope } from '../test/integration/helpers/scope.js';

export const BENCH_SYSTEMS = [
  'sluice-vxlan', 'sluice-udp', 'kernel-vxlan', 'openvpn', 'tinc', 'sluice-vxlan-nooffload', 'sluice-vxlan-baseline',
  'sluice-vxlan-2t', 'sluice-vxlan-2n', 'sluice-vxlan-lowlat',
] as const;
export type BenchKind = (typeof BENCH_SYSTEMS)[number];
/** Run when --systems is not given (those not installed are skipped with a note). */
export const DEFAULT_SYSTEMS: readonly BenchKind[] = ['sluice-vxlan', 'sluice-udp', 'kernel-vxlan', 'openvpn', 'tinc'];

export const PREFIX = 'slsb-';
const TAG: Record<BenchKind, string> = {
  'sluice-vxlan': 'sv', 'sluice-udp': 'su', 'kernel-vxlan': 'kv', openvpn: 'ov', tinc: 'tc',
  'sluice-vxlan-nooffload': 'sn', 'sluice-vxlan-baseline': 'sb', 'sluice-vxlan-2t': 's2', 'sluice-vxlan-2n': 's3',
  'sluice-vxlan-lowlat': 'sl',
};
const POD_IPS = ['10.244.1.2', '10.244.2.2'] as const;
/** Tunnel MTU for every system: underlay 1500 minus VXLAN's 50, so segment sizes match. */
const TUNNEL_MTU = 1450;
/** sluice-vxlan-lowlat's busy-poll time: a little more than a round trip between two hosts here. */
const LOWLAT_BUSY_POLL_US = 300;

/** Daemon flags of the Sluice systems that are not the defaults. */
const DAEMON_FLAGS: Partial<Record<BenchKind, string[]>> = {
  'sluice-vxlan-2t': ['--datapath-threads', '2'],
  'sluice-vxlan-2n': ['--datapath-threads', '2', '--no-main-fast-path'],
  'sluice-vxlan-lowlat': ['--datapath-threads', '2', '--no-main-fast-path', `--busy-poll`, String(LOWLAT_BUSY_POLL_US)],
};

export interface Pod {
  netns: string;
  ip: string;
}

export interface BenchSystem {
  kind: BenchKind;
  pods: [Pod, Pod];
  /** The processes doing the forwarding (h1, h2); empty for the kernel. */
  procs: Proc[];
}

export interface BuildOptions {
  /** Working directory (cluster files, ready files, tunnel configs). */
  dir: string;
  /** A Sluice checkout whose dist/src/cli.js runs the baseline system. */
  baseline?: string;
  /** SCHED_FIFO priority for every userspace forwarder (Sluice, OpenVPN, tinc); 0: normal. */
  realtime?: number;
}

/** Why a system cannot run here (a missing program), or undefined. */
export async function unavailable(kind: BenchKind, o: BuildOptions): Promise<string | undefined> {
  const has = async (cmd: string) => (await run('sh', ['-c', `command -v ${cmd}`], { check: false })).code === 0;
  if (kind === 'openvpn' && !await has('openvpn')) return 'openvpn not installed (apt-get install openvpn)';
  if (kind === 'tinc' && !await has('tincd')) return 'tincd not installed (apt-get install tinc)';
  if (kind === 'sluice-vxlan-baseline') {
    if (!o.baseline) return 'needs --baseline DIR (a built Sluice checkout)';
    if (!existsSync(baselineCli(o.baseline))) return `${baselineCli(o.baseline)} not found (build that checkout)`;
  }
  return undefined;
}

const baselineCli = (dir: string) => join(dir, 'dist', 'src', 'cli.js');

/** Builds system number `index` on `underlay`. */
export async function buildBenchSystem(scope: Scope, kind: BenchKind, index: number, underlay: string, o: BuildOptions): Promise<BenchSystem> {
  const tag = TAG[kind];
  const hosts: HostRecord[] = [1, 2].map((i) => ({
    name: `h${i}`,
    publicIP: `10.99.0.${2 * index + i}`,
    subnet: `10.244.${i}.0/24`,
    vtepMAC: `02:00:0a:f4:0${i}:${(index + 1).toString(16).padStart(2, '0')}`,
  }));
  const hostNs = hosts.map((h) => `${PREFIX}${tag}-${h.name}`);
  const pods: [Pod, Pod] = [{ netns: `${PREFIX}${tag}-p1`, ip: POD_IPS[0] }, { netns: `${PREFIX}${tag}-p2`, ip: POD_IPS[1] }];
  for (let i = 0; i < 2; i++) {
    await addNetns(scope, hostNs[i]);
    await attachToUnderlay(underlay, hostNs[i], { port: `${tag}${hosts[i].name}`, address: `${hosts[i].publicIP}/24` });
    await addNetns(scope, pods[i].netns);
  }
  const dir = join(o.dir, tag);
  mkdirSync(dir, { recursive: true });
  switch (kind) {
    case 'kernel-vxlan': {
      const config: NetworkConfig = { network: '10.244.0.0/16', subnetLen: 24, backend: { type: 'vxlan', port: 8472, vni: 1 } };
      for (let i = 0; i < 2; i++) {
        const host = await setupKernelVxlanHost({ netns: hostNs[i], self: hosts[i], peers: [hosts[1 - i]], config });
        await addKernelPod(host, { netns: pods[i].netns, ip: pods[i].ip, hostVeth: `vethp${i + 1}` });
      }
      return { kind, pods, procs: [] };
    }
    case 'openvpn':
    case 'tinc': {
      for (let i = 0; i < 2; i++) await addRoutedPod(hostNs[i], pods[i], i + 1);
      const rt = o.realtime ?? 0;
      const procs = kind === 'openvpn' ? await startOpenvpn(scope, hostNs, hosts, rt) : await startTinc(scope, hostNs, hosts, dir, rt);
      return { kind, pods, procs };
    }
    default: {
      const configFile = join(dir, 'cluster.yaml');
      writeClusterFile(configFile, {
        network: '10.244.0.0/16', subnetLen: 24, backend: kind === 'sluice-udp' ? 'udp' : 'vxlan',
        hosts, pods: pods.map((p, i) => ({ name: `p${i + 1}`, host: hosts[i].name, ip: p.ip, netns: p.netns })),
      });
      const cli = kind === 'sluice-vxlan-baseline' ? baselineCli(o.baseline!) : CLI_PATH;
      const env = kind === 'sluice-vxlan-nooffload' ? ['SLUICE_OFFLOADS=off'] : [];
      // The baseline build predates SLUICE_REALTIME: it runs under chrt instead.
      // sluice-vxlan-lowlat busy-polls, which the daemon refuses to do SCHED_FIFO.
      if (o.realtime && kind !== 'sluice-vxlan-lowlat') env.push(`SLUICE_REALTIME=${o.realtime}`);
      const flags = DAEMON_FLAGS[kind] ?? [];
      const procs: Proc[] = [];
      for (let i = 0; i < 2; i++) procs.push(await startSluice(scope, cli, env, hostNs[i], configFile, hosts[i].name, dir, flags));
      return { kind, pods, procs };
    }
  }
}

/**
 * A Sluice daemon of build `cli`, started in `netns` with extra environment `env` (NAME=VALUE;
 * env(1) execs node in place, so the PID is the daemon's), once it wrote its ready file.
 */
async function startSluice(scope: Scope, cli: string, env: string[], netns: string, configFile: string,
  host: string, dir: string, flags: readonly string[] = []): Promise<Proc> {
  const readyFile = join(dir, `${host}.ready`);
  const args = [...env, process.execPath, ...DAEMON_NODE_FLAGS, cli, 'daemon', '--config', configFile, '--host', host, '--ready-file', readyFile,
    '--log-level', 'warn', ...flags];
  const p = Proc.start(scope, 'env', args, { netns, label: `sluice daemon ${host} (${netns})` });
  if (cli !== CLI_PATH) {
    const rt = env.find((e) => e.startsWith('SLUICE_REALTIME='))?.split('=')[1];
    if (rt) await run('chrt', ['-f', '-p', rt, String(p.pid)]);
  }
  await waitUntil(() => existsSync(readyFile), p, 20_000);
  return p;
}

/** A pod namespace behind a veth, routed by its host (host side x.x.N.1, pod x.x.N.2). */
async function addRoutedPod(hostNs: string, pod: Pod, n: number): Promise<void> {
  const hostVeth = `vethp${n}`;
  await inNetns(hostNs, 'ip', ['link', 'add', hostVeth, 'mtu', String(TUNNEL_MTU), 'type', 'veth', 'peer', 'name', 'eth0',
    'mtu', String(TUNNEL_MTU), 'netns', pod.netns]);
  await inNetns(hostNs, 'ip', ['addr', 'add', `10.244.${n}.1/24`, 'dev', hostVeth]);
  await inNetns(hostNs, 'ip', ['link', 'set', hostVeth, 'up']);
  await inNetns(hostNs, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await inNetns(pod.netns, 'ip', ['addr', 'add', `${pod.ip}/24`, 'dev', 'eth0']);
  await inNetns(pod.netns, 'ip', ['link', 'set', 'eth0', 'up']);
  await inNetns(pod.netns, 'ip', ['route', 'replace', 'default', 'via', `10.244.${n}.1`, 'dev', 'eth0']);
}

/**
 * OpenVPN 2.x point-to-point over UDP with no crypto at all (no --secret, no TLS: cleartext, no
 * authentication), and no kernel data-channel offload (--disable-dco): the userspace data path.
 */
async function startOpenvpn(scope: Scope, hostNs: string[], hosts: HostRecord[], rt: number): Promise<Proc[]> {
  const procs: Proc[] = [];
  for (let i = 0; i < 2; i++) {
    const me = hosts[i], peer = hosts[1 - i];
    const args = ['--dev', 'tun0', '--dev-type', 'tun', '--proto', 'udp', '--local', me.publicIP, '--lport', '1194',
      '--remote', peer.publicIP, '--rport', '1194', '--ifconfig', `10.8.0.${i + 1}`, `10.8.0.${2 - i}`,
      '--tun-mtu', String(TUNNEL_MTU), '--disable-dco', '--fast-io', '--verb', '3',
      '--route', `10.244.${2 - i}.0`, '255.255.255.0'];
    procs.push(startMaybeRt(scope, rt, 'openvpn', args, hostNs[i], `openvpn ${me.name}`));
  }
  for (const p of procs) await p.waitFor(/Initialization Sequence Completed/, 20_000);
  return procs;
}

/** tinc 1.0 in router mode, Cipher/Digest none, MACLength 0, no compression. */
async function startTinc(scope: Scope, hostNs: string[], hosts: HostRecord[], dir: string, rt: number): Promise<Proc[]> {
  const confs = hosts.map((h) => join(dir, `tinc-${h.name}`));
  for (let i = 0; i < 2; i++) {
    const me = hosts[i], peer = hosts[1 - i], conf = confs[i];
    mkdirSync(join(conf, 'hosts'), { recursive: true });
    writeFileSync(join(conf, 'tinc.conf'),
      `Name = ${me.name}\nMode = router\nInterface = tinc0\nAddressFamily = ipv4\nBindToAddress = ${me.publicIP}\nConnectTo = ${peer.name}\n`);
    writeFileSync(join(conf, 'hosts', me.name),
      `Address = ${me.publicIP}\nSubnet = ${me.subnet}\nSubnet = 10.8.0.${i + 1}/32\nCipher = none\nDigest = none\nMACLength = 0\nCompression = 0\n`);
    writeFileSync(join(conf, 'tinc-up'),
      `#!/bin/sh\nip link set "$INTERFACE" up mtu ${TUNNEL_MTU}\nip addr add 10.8.0.${i + 1}/24 dev "$INTERFACE"\n` +
      `ip route replace ${peer.subnet} dev "$INTERFACE"\n`);
    chmodSync(join(conf, 'tinc-up'), 0o755);
    // RSA keys authenticate the meta connection only; data packets carry no crypto.
    await run('tincd', ['-c', conf, '-K2048'], { timeoutMs: 60_000 });
  }
  for (let i = 0; i < 2; i++) {
    const other = confs[1 - i];
    writeFileSync(join(other, 'hosts', hosts[i].name), readFileSync(join(confs[i], 'hosts', hosts[i].name), 'utf8'));
  }
  const procs = hostNs.map((ns, i) => startMaybeRt(scope, rt, 'tincd', ['-c', confs[i], '-D', '-d1', '--pidfile', join(confs[i], 'pid')],
    ns, `tincd ${hosts[i].name}`));
  for (const p of procs) await p.waitFor(/Connection with h\d .* activated/, 30_000, 'stderr');
  return procs;
}

/** CMD in NETNS, under `chrt -f RT` when RT > 0 (chrt execs in place: the PID is CMD's). */
function startMaybeRt(scope: Scope, rt: number, cmd: string, args: string[], netns: string, label: string): Proc {
  return rt > 0
    ? Proc.start(scope, 'chrt', ['-f', String(rt), cmd, ...args], { netns, label })
    : Proc.start(scope, cmd, args, { netns, label });
}

async function waitUntil(done: () => boolean, p: Proc, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (p.exit) throw new Error(`${p.label} ${describe(p.exit)} before it was ready\n${p.tail()}`);
    if (Date.now() > end) throw new Error(`${p.label} not ready after ${timeoutMs} ms\n${p.tail()}`);
    await sleep(50);
  }
}
