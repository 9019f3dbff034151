// The control-plane seam: everything the daemon learns about the cluster comes
// through a Store. The file store (embedded default) and the etcd store implement it.

/** Flannel's network config fields (see shared/reference/flannel.md). */
export interface NetworkConfig {
  network: string;            // "10.244.0.0/16"
  subnetLen: number;          // 24
  ipv6Network?: string;       // "fd00:10:244::/56"
  ipv6SubnetLen?: number;     // 64
  backend: { type: 'vxlan' | 'udp'; port: number; vni: number };
  /** Underlay MTU override; when absent the daemon reads the underlay interface's MTU. */
  mtu?: number;
}

/** A host of the overlay: a Sluice daemon or a static peer such as a kernel VXLAN host. */
export interface HostRecord {
  name: string;
  publicIP: string;           // underlay IPv4 address
  subnet: string;             // "10.244.1.0/24"
  ipv6Subnet?: string;        // "fd00:10:244:1::/64"
  vtepMAC: string;            // "02:00:0a:f4:01:00"
  port?: number;              // underlay UDP port when it differs from the backend's default
}

/** A workload endpoint: one TUN device owned by the daemon on `host`. */
export interface EndpointRecord {
  namespace: string;
  name: string;
  host: string;
  ip: string;                 // IPv4 address
  ipv6?: string;
  netns?: string;             // network namespace to move the TUN into (absent: stays in the daemon's)
  ifname: string;             // interface name inside the netns (default "eth0")
  labels: Record<string, string>;
}

export interface StoreSnapshot {
  config: NetworkConfig;
  hosts: HostRecord[];
  endpoints: EndpointRecord[];
  /** Raw manifests (Namespace, Pod, NetworkPolicy, Calico policies) for the policy layer. */
  manifests: unknown[];
}

/** Whether the store can be reached; a daemon keeps forwarding with its last state meanwhile. */
export interface StoreHealth {
  status: 'ok' | 'degraded';
  /** e.g. ["store unreachable"], ["subnet lease lost; re-acquiring"]. */
  reasons: string[];
}

export interface Store {
  /** Reads the current state; rejects with a StoreError naming the bad field. */
  load(): Promise<StoreSnapshot>;
  /** Calls `onChange` with every new valid snapshot; invalid updates go to `onError` and change nothing. */
  watch(onChange: (s: StoreSnapshot) => void, onError: (e: Error) => void): () => void;
  close(): Promise<void>;
  /** Stores that can become unreachable (etcd) report it; the file store is always ok. */
  health?(): StoreHealth;
  onHealth?(listener: (h: StoreHealth) => void): () => void;
}
