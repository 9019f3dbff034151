// A Flannel-style kernel VXLAN host, built with `ip`/`bridge` exactly as Flannel's vxlan backend
// configures the kernel (flannel-io/flannel pkg/backend/vxlan), so that Sluice can be tested and
// benchmarked against a peer nobody here wrote:
//
//   host netns                                                 pod netns
//   ┌──────────────────────────────────────────────────┐      ┌───────────────────────────┐
//   │ eth0 (underlay, PUBLIC_IP)                       │      │ eth0 POD_IP/SubnetLen     │
//   │ flannel.<VNI>: vxlan id VNI local PUBLIC_IP      │      │ default via GATEWAY (.1)  │
//   │   dev eth0 dstport PORT nolearning,              │      └────────────┬──────────────┘
//   │   MAC = own vtepMAC, MTU = underlay − 50,        │                   │ veth
//   │   SUBNET.0/32                                    │   cni0 GATEWAY/SubnetLen ◄┘
//   │ per peer: neigh PEER_SUBNET.0 → PEER_VTEP_MAC    │   ip_forward = 1
//   │           fdb   PEER_VTEP_MAC → PEER_PUBLIC_IP   │
//   │           route PEER_SUBNET via PEER_SUBNET.0 onlink (last, so the kernel never ARPs)
//   └──────────────────────────────────────────────────┘
//
// Flannel installs neigh and FDB entries with netlink NeighSet (NUD_PERMANENT, NTF_SELF for the
// FDB): `ip neigh replace ... nud permanent` and `bridge fdb replace ... self permanent` are the
// same requests. The pod side mirrors the flannel CNI plugin (bridge `cni0` holding the subnet's
// first address, one veth per pod).
import ipaddr from 'ipaddr.js';
import { ip, ipIn } from '../daemon/ip.js';
import type { HostRecord, NetworkConfig } from '../store/store.js';

/** Outer IPv4 + UDP + VXLAN + inner Ethernet, as Flannel's encapOverhead. */
export const KERNEL_VXLAN_OVERHEAD = 50;
export const CNI_BRIDGE = 'cni0';

export interface KernelVxlanHostOptions {
  /** The host's network namespace (holds the underlay device). */
  netns: string;
  self: HostRecord;
  peers: readonly HostRecord[];
  config: NetworkConfig;
  /** Underlay device in the host namespace (default eth0). */
  underlayDev?: string;
  /**
   * Leave transmit checksum offload on the underlay device on (default true, as Flannel does).
   * Set false when the peer is a userspace VTEP (Sluice) and the underlay is a veth: a veth never
   * fills in checksums left to "hardware", so the kernel's VXLAN sends inner TCP/UDP checksums
   * unfinished. A kernel peer never checks them (the skb stays CHECKSUM_PARTIAL across the veth),
   * but a UDP socket hands the raw bytes to userspace, and the pod behind the TUN then drops every
   * TCP segment as corrupt. false makes this host finish checksums in software, as it does in
   * front of a NIC without offload.
   */
  underlayTxChecksumOffload?: boolean;
}

export interface KernelVxlanHost {
  netns: string;
  /** flannel.<VNI> */
  device: string;
  /** MTU of the VXLAN device, also used for pods. */
  mtu: number;
  /** The host's address in its subnet (on cni0), the pods' default gateway. */
  gateway: string;
  prefixLength: number;
}

/** Creates flannel.<VNI> with one neighbour, FDB entry and route per peer. */
export async function setupKernelVxlanHost(o: KernelVxlanHostOptions): Promise<KernelVxlanHost> {
  const { netns, self, config } = o;
  if (config.backend.type !== 'vxlan') {
    throw new Error(`kernel VXLAN host ${self.name}: network.Backend.Type is "${config.backend.type}"; a kernel VXLAN peer needs "vxlan"`);
  }
  const at = `kernel VXLAN host ${self.name}`;
  const own = subnetOf(self, at);
  checkMac(self.vtepMAC, `${at}: vtepMAC`);
  const dev = o.underlayDev ?? 'eth0';
  const device = `flannel.${config.backend.vni}`;
  const underlayMtu = config.mtu ?? await linkMtu(netns, dev);
  const mtu = underlayMtu - KERNEL_VXLAN_OVERHEAD;
  if (o.underlayTxChecksumOffload === false) await ip('netns', 'exec', netns, 'ethtool', '-K', dev, 'tx', 'off');

  await ipIn(netns, 'link', 'add', device, 'address', self.vtepMAC, 'mtu', String(mtu), 'type', 'vxlan',
    'id', String(config.backend.vni), 'local', self.publicIP, 'dev', dev, 'dstport', String(config.backend.port), 'nolearning');
  await ipIn(netns, 'addr', 'add', `${own.network}/32`, 'dev', device);
  await ipIn(netns, 'link', 'set', device, 'up');
  for (const p of o.peers) await addKernelVxlanPeer(netns, device, p);

  // cni0 holds the subnet's first address; pods attach to it (addKernelPod).
  const gateway = nthAddress(own.network, 1);
  await ipIn(netns, 'link', 'add', CNI_BRIDGE, 'mtu', String(mtu), 'type', 'bridge');
  await ipIn(netns, 'addr', 'add', `${gateway}/${own.prefixLength}`, 'dev', CNI_BRIDGE);
  await ipIn(netns, 'link', 'set', CNI_BRIDGE, 'up');
  await ip('netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  return { netns, device, mtu, gateway, prefixLength: own.prefixLength };
}

/** The three entries Flannel installs per remote lease, in Flannel's order. */
export async function addKernelVxlanPeer(netns: string, device: string, peer: HostRecord): Promise<void> {
  const at = `kernel VXLAN peer ${peer.name}`;
  const sub = subnetOf(peer, at);
  checkMac(peer.vtepMAC, `${at}: vtepMAC`);
  await ipIn(netns, 'neigh', 'replace', sub.network, 'lladdr', peer.vtepMAC, 'dev', device, 'nud', 'permanent');
  await bridgeIn(netns, 'fdb', 'replace', peer.vtepMAC, 'dev', device, 'dst', peer.publicIP, 'self', 'permanent');
  await ipIn(netns, 'route', 'replace', `${sub.network}/${sub.prefixLength}`, 'via', sub.network, 'dev', device, 'onlink');
}

/** Removes a peer's entries, route first (the reverse of adding). */
export async function removeKernelVxlanPeer(netns: string, device: string, peer: HostRecord): Promise<void> {
  const sub = subnetOf(peer, `kernel VXLAN peer ${peer.name}`);
  await ipIn(netns, 'route', 'del', `${sub.network}/${sub.prefixLength}`, 'via', sub.network, 'dev', device, 'onlink');
  await bridgeIn(netns, 'fdb', 'del', peer.vtepMAC, 'dev', device, 'dst', peer.publicIP, 'self');
  await ipIn(netns, 'neigh', 'del', sub.network, 'dev', device);
}

export interface KernelPodOptions {
  /** An existing namespace for the pod (the caller creates and deletes it). */
  netns: string;
  ip: string;
  /** Name of the host-side veth on cni0 (≤ 15 chars, unique in the host namespace). */
  hostVeth: string;
  ifname?: string;
}

/** Wires a pod namespace to the host's cni0 bridge, as the flannel CNI plugin does. */
export async function addKernelPod(host: KernelVxlanHost, pod: KernelPodOptions): Promise<void> {
  const ifname = pod.ifname ?? 'eth0';
  await ipIn(host.netns, 'link', 'add', pod.hostVeth, 'mtu', String(host.mtu), 'type', 'veth',
    'peer', 'name', ifname, 'mtu', String(host.mtu), 'netns', pod.netns);
  await ipIn(host.netns, 'link', 'set', pod.hostVeth, 'master', CNI_BRIDGE, 'up');
  await ipIn(pod.netns, 'link', 'set', 'lo', 'up');
  await ipIn(pod.netns, 'addr', 'add', `${pod.ip}/${host.prefixLength}`, 'dev', ifname);
  await ipIn(pod.netns, 'link', 'set', ifname, 'up');
  await ipIn(pod.netns, 'route', 'replace', 'default', 'via', host.gateway, 'dev', ifname);
}

interface Subnet4 {
  network: string;
  prefixLength: number;
}

function subnetOf(h: HostRecord, at: string): Subnet4 {
  let parsed: [ipaddr.IPv4, number];
  try {
    parsed = ipaddr.IPv4.parseCIDR(h.subnet);
  } catch {
    throw new Error(`${at}: subnet ${JSON.stringify(h.subnet)} is not an IPv4 CIDR`);
  }
  const [addr, len] = parsed;
  const network = ipaddr.IPv4.networkAddressFromCIDR(`${addr.toString()}/${len}`).toString();
  if (!ipaddr.IPv4.isValidFourPartDecimal(h.publicIP)) throw new Error(`${at}: publicIP ${JSON.stringify(h.publicIP)} is not an IPv4 address`);
  return { network, prefixLength: len };
}

function nthAddress(network: string, n: number): string {
  const b = ipaddr.IPv4.parse(network).toByteArray();
  const v = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) + n;
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

function checkMac(mac: string | undefined, at: string): void {
  if (!mac || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) throw new Error(`${at}: ${JSON.stringify(mac)} is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  if (parseInt(mac.slice(0, 2), 16) & 1) throw new Error(`${at}: ${mac} is a multicast MAC; a VTEP needs a unicast one`);
}

async function linkMtu(netns: string, dev: string): Promise<number> {
  const [link] = JSON.parse(await ipIn(netns, '-j', 'link', 'show', 'dev', dev)) as { mtu: number }[];
  if (!link) throw new Error(`no device ${dev} in netns ${netns}`);
  return link.mtu;
}

/** `bridge` (iproute2) inside a namespace. */
function bridgeIn(netns: string, ...args: string[]): Promise<string> {
  return ip('netns', 'exec', netns, 'bridge', ...args);
}
