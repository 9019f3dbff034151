// A workload endpoint: a TUN device the daemon opens, moves into the workload's
// network namespace and configures with its address and a default route. The
// daemon keeps the fd, so every packet the workload sends or receives passes here.
//
// With the `tun` offload the TUN carries a virtio header (IFF_VNET_HDR) and
// TSO: the workload's TCP hands us 64 KiB super-packets and takes them whole.
// If the kernel refuses, the endpoint falls back to a plain TUN and says why.
//
// Every TUN is multi-queue (IFF_MULTI_QUEUE): one queue fd per datapath thread,
// the kernel spreading flows over them. A persistent endpoint (TUNSETPERSIST)
// outlives the daemon: it is opened by its final name inside the pod's
// namespace, so a restarted daemon re-attaches to the same device and the pod's
// interface, addresses and routes never go away.
import { createHash } from 'node:crypto';
import { TunFlags, TunOffload, isNativeSystemError, native } from '../native/binding.js';
import { offloadsFromEnv, type Offloads } from './offloads.js';
import { ipIn, ip } from '../daemon/ip.js';
import type { EndpointRecord } from '../store/store.js';
import { TxQueue } from './tx-queue.js';
import { ipv4ToInt32, ipv6ToWords } from './addresses.js';

/** Packets the kernel queues towards the daemon on a workload's TUN (default 500 is too shallow). */
const TUN_TX_QUEUE_LEN = 10_000;

export interface EndpointOptions {
  /** TUN queues to open (one per datapath thread; default 1). */
  queues?: number;
  /** Keep the device when the daemon exits, re-attach to it on start (default false). */
  persist?: boolean;
}

/** Where `ip netns` keeps named namespaces. */
const NETNS_DIR = '/var/run/netns';

export class Endpoint {
  readonly key: string;
  readonly ip4: number;
  readonly ip6: Int32Array | undefined;
  readonly tx: TxQueue;
  /** Queue 0's fd: the JS pipeline's (-1: closed). */
  fd = -1;
  /** Queues 1..n-1, for the other datapath threads. */
  queueFds: number[] = [];
  tunName = '';
  /** open() found the persistent device from an earlier run and attached to it. */
  reattached = false;
  #rxPackets = 0;
  #rxBytes = 0;
  /** The TUN was opened with a virtio header (reads/writes go through readBatchVnet/writeBatchGso). */
  vnet = false;
  /** The kernel accepted TSO on the TUN: reads may be super-packets. */
  tso = false;
  /** Why an offload the options asked for is off (the kernel's refusal), for the log. */
  offloadError: string | undefined;
  /** Set while the endpoint is on the forwarder's list of queues to flush. */
  queued = false;
  /** The native fast path polls this TUN (FastPath.attach); undone by close(). */
  fastPath = false;

  readonly queues: number;
  readonly persist: boolean;

  constructor(readonly record: EndpointRecord, readonly mtu: number, txCapacity: number,
    readonly offloads: Offloads = offloadsFromEnv(), opts: EndpointOptions = {}) {
    this.queues = opts.queues ?? 1;
    if (!Number.isInteger(this.queues) || this.queues < 1 || this.queues > 64) {
      throw new RangeError(`endpoint ${record.namespace}/${record.name}: queues must be an integer 1..64, got ${String(opts.queues)}`);
    }
    this.persist = opts.persist ?? false;
    this.key = `${record.namespace}/${record.name}`;
    this.ip4 = ipv4ToInt32(record.ip);
    this.ip6 = record.ipv6 ? ipv6ToWords(record.ipv6) : undefined;
    this.tx = new TxQueue(txCapacity);
  }

  /** Opens the TUN and configures it; on failure the device is closed again. */
  async open(): Promise<void> {
    if (this.persist) return this.#openPersistent();
    const r = this.record;
    const name = this.#openQueues(tunNameFor(this.key), undefined);
    try {
      // A deep queue absorbs bursts while the daemon is busy, instead of dropping (and TCP backing off).
      await ip('link', 'set', 'dev', name, 'mtu', String(this.mtu), 'txqueuelen', String(TUN_TX_QUEUE_LEN));
      let dev = name;
      if (r.netns) {
        await ip('link', 'set', 'dev', name, 'netns', r.netns);
        await ipIn(r.netns, 'link', 'set', 'dev', name, 'name', r.ifname);
        await ipIn(r.netns, 'link', 'set', 'dev', 'lo', 'up');
        dev = r.ifname;
      }
      await this.#configure(dev);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /**
   * The device is created (or found) by its final name where it lives, so a
   * restart finds it again; everything set on it is idempotent. A device that
   * exists but is not a TUN of ours (another type, other flags) is refused by
   * the kernel (EINVAL) and named in the error.
   */
  async #openPersistent(): Promise<void> {
    const r = this.record;
    const dev = r.netns ? r.ifname : tunNameFor(this.key);
    this.reattached = await ipIn(r.netns, 'link', 'show', 'dev', dev).then(() => true, () => false);
    this.#openQueues(dev, r.netns ? `${NETNS_DIR}/${r.netns}` : undefined);
    try {
      native.tunSetPersist(this.fd, 1);
      await ipIn(r.netns, 'link', 'set', 'dev', dev, 'mtu', String(this.mtu), 'txqueuelen', String(TUN_TX_QUEUE_LEN));
      if (r.netns) await ipIn(r.netns, 'link', 'set', 'dev', 'lo', 'up');
      await this.#configure(dev);
    } catch (err) {
      // A device we just made goes again; one we re-attached to stays for the next try.
      if (!this.reattached && this.fd >= 0) native.tunSetPersist(this.fd, 0);
      this.close();
      throw err;
    }
  }

  /** Addresses, link up and (in a pod's namespace) default routes; `replace`, so a re-attached device is fine. */
  async #configure(dev: string): Promise<void> {
    const r = this.record;
    await ipIn(r.netns, 'addr', 'replace', `${r.ip}/32`, 'dev', dev);
    if (r.ipv6) await ipIn(r.netns, 'addr', 'replace', `${r.ipv6}/128`, 'dev', dev, 'nodad');
    await ipIn(r.netns, 'link', 'set', 'dev', dev, 'up');
    if (r.netns) {
      await ipIn(r.netns, 'route', 'replace', 'default', 'dev', dev);
      if (r.ipv6) await ipIn(r.netns, '-6', 'route', 'replace', 'default', 'dev', dev);
    }
  }

  /** Opens every queue of the device `name` (in `netns`, a path, if given); returns the device's name. */
  #openQueues(name: string, netns: string | undefined): string {
    const first = this.#openTun(name, netns);
    this.fd = first.fd;
    this.tunName = first.name;
    this.tx.countFd = first.fd;
    try {
      const flags = TunFlags.MultiQueue | (this.vnet ? TunFlags.VnetHdr : 0);
      for (let q = 1; q < this.queues; q++) {
        const { fd } = native.openTun(first.name, flags, netns);
        this.queueFds.push(fd);
        if (this.tso) native.tunSetOffload(fd, TunOffload.Csum | TunOffload.Tso4 | TunOffload.Tso6);
      }
    } catch (err) {
      this.close();
      throw err;
    }
    return first.name;
  }

  /** Opens the TUN with a virtio header and TSO when asked for, falling back to a plain TUN. */
  #openTun(name: string, netns: string | undefined): { fd: number; name: string } {
    const mq = TunFlags.MultiQueue;
    if (!this.offloads.tun) return native.openTun(name, mq, netns);
    let h: { fd: number; name: string };
    try {
      h = native.openTun(name, mq | TunFlags.VnetHdr, netns);
    } catch (err) {
      if (!isNativeSystemError(err) || err.code !== 'EINVAL') throw err;
      this.offloadError = `IFF_VNET_HDR refused (${err.code})`;
      return native.openTun(name, mq, netns);
    }
    this.vnet = true;
    try {
      native.tunSetOffload(h.fd, TunOffload.Csum | TunOffload.Tso4 | TunOffload.Tso6);
      this.tso = true;
    } catch (err) {
      // The virtio header stays (10 bytes, every packet complete): correct, just without super-packets.
      this.offloadError = `TUNSETOFFLOAD refused (${isNativeSystemError(err) ? err.code : String(err)})`;
    }
    return h;
  }

  /** Packets the workload sent: read by the JS pipeline, plus those the native fast path read. */
  get rxPackets(): number {
    return this.#rxPackets + (this.fastPath ? native.fastPathFdStats(this.fd).rxPackets : 0);
  }

  get rxBytes(): number {
    return this.#rxBytes + (this.fastPath ? native.fastPathFdStats(this.fd).rxBytes : 0);
  }

  /** Counts a packet the JS pipeline read from the TUN. */
  countRx(len: number): void {
    this.#rxPackets++;
    this.#rxBytes += len;
  }

  /**
   * Closes every queue. A non-persistent TUN goes with its last fd, wherever its
   * namespace; a persistent one stays (carrier off) for the next daemon, unless
   * `destroy` — the endpoint is gone from the store.
   */
  close(destroy = false): void {
    if (this.fd >= 0 && this.persist && destroy) {
      try {
        native.tunSetPersist(this.fd, 0);
      } catch {
        // The fd still closes below; a device left behind is removed with its namespace.
      }
    }
    // Before an fd number can be reused: no fast-path state may point at it.
    for (const fd of this.fd >= 0 ? [this.fd, ...this.queueFds] : this.queueFds) {
      native.fastPathForget(fd);
      native.closeFd(fd);
    }
    this.fd = -1;
    this.queueFds = [];
    this.fastPath = false;
    this.tx.countFd = -1;
  }
}

/** A stable, short (≤ 15 bytes) device name for an endpoint in the daemon's namespace. */
export function tunNameFor(key: string): string {
  return 'sl' + createHash('sha1').update(key).digest('hex').slice(0, 10);
}
