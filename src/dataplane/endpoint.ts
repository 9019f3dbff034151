// A workload endpoint: a TUN device the daemon opens, moves into the workload's
// network namespace and configures with its address and a default route. The
// daemon keeps the fd, so every packet the workload sends or receives passes here.
//
// With the `tun` offload the TUN carries a virtio header (IFF_VNET_HDR) and
// TSO: the workload's TCP hands us 64 KiB super-packets and takes them whole.
// If the kernel refuses, the endpoint falls back to a plain TUN and says why.
import { createHash } from 'node:crypto';
import { TunFlags, TunOffload, isNativeSystemError, native } from '../native/binding.js';
import { offloadsFromEnv, type Offloads } from './offloads.js';
import { ipIn, ip } from '../daemon/ip.js';
import type { EndpointRecord } from '../store/store.js';
import { TxQueue } from './tx-queue.js';
import { ipv4ToInt32, ipv6ToWords } from './addresses.js';

/** Packets the kernel queues towards the daemon on a workload's TUN (default 500 is too shallow). */
const TUN_TX_QUEUE_LEN = 10_000;

export class Endpoint {
  readonly key: string;
  readonly ip4: number;
  readonly ip6: Int32Array | undefined;
  readonly tx: TxQueue;
  fd = -1;
  tunName = '';
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

  constructor(readonly record: EndpointRecord, readonly mtu: number, txCapacity: number,
    readonly offloads: Offloads = offloadsFromEnv()) {
    this.key = `${record.namespace}/${record.name}`;
    this.ip4 = ipv4ToInt32(record.ip);
    this.ip6 = record.ipv6 ? ipv6ToWords(record.ipv6) : undefined;
    this.tx = new TxQueue(txCapacity);
  }

  /** Opens the TUN and configures it; on failure the device is closed again. */
  async open(): Promise<void> {
    const r = this.record;
    const { fd, name } = this.#openTun();
    this.fd = fd;
    this.tunName = name;
    this.tx.countFd = fd;
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
      await ipIn(r.netns, 'addr', 'add', `${r.ip}/32`, 'dev', dev);
      if (r.ipv6) await ipIn(r.netns, 'addr', 'add', `${r.ipv6}/128`, 'dev', dev, 'nodad');
      await ipIn(r.netns, 'link', 'set', 'dev', dev, 'up');
      if (r.netns) {
        await ipIn(r.netns, 'route', 'replace', 'default', 'dev', dev);
        if (r.ipv6) await ipIn(r.netns, '-6', 'route', 'replace', 'default', 'dev', dev);
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Opens the TUN with a virtio header and TSO when asked for, falling back to a plain TUN. */
  #openTun(): { fd: number; name: string } {
    const name = tunNameFor(this.key);
    if (!this.offloads.tun) return native.openTun(name, 0);
    let h: { fd: number; name: string };
    try {
      h = native.openTun(name, TunFlags.VnetHdr);
    } catch (err) {
      if (!isNativeSystemError(err) || err.code !== 'EINVAL') throw err;
      this.offloadError = `IFF_VNET_HDR refused (${err.code})`;
      return native.openTun(name, 0);
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

  /** Closing the fd destroys the (non-persistent) TUN, wherever its namespace. */
  close(): void {
    if (this.fd >= 0) {
      // Before the fd number can be reused: no fast-path state may point at it.
      native.fastPathForget(this.fd);
      native.closeFd(this.fd);
    }
    this.fd = -1;
    this.fastPath = false;
    this.tx.countFd = -1;
  }
}

/** A stable, short (≤ 15 bytes) device name for an endpoint in the daemon's namespace. */
export function tunNameFor(key: string): string {
  return 'sl' + createHash('sha1').update(key).digest('hex').slice(0, 10);
}
