// A workload endpoint: a TUN device the daemon opens, moves into the workload's
// network namespace and configures with its address and a default route. The
// daemon keeps the fd, so every packet the workload sends or receives passes here.
import { createHash } from 'node:crypto';
import { native } from '../native/binding.js';
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
  rxPackets = 0;
  rxBytes = 0;

  constructor(readonly record: EndpointRecord, readonly mtu: number, txCapacity: number) {
    this.key = `${record.namespace}/${record.name}`;
    this.ip4 = ipv4ToInt32(record.ip);
    this.ip6 = record.ipv6 ? ipv6ToWords(record.ipv6) : undefined;
    this.tx = new TxQueue(txCapacity);
  }

  /** Opens the TUN and configures it; on failure the device is closed again. */
  async open(): Promise<void> {
    const r = this.record;
    const { fd, name } = native.openTun(tunNameFor(this.key), 0);
    this.fd = fd;
    this.tunName = name;
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

  /** Closing the fd destroys the (non-persistent) TUN, wherever its namespace. */
  close(): void {
    if (this.fd >= 0) native.closeFd(this.fd);
    this.fd = -1;
  }
}

/** A stable, short (≤ 15 bytes) device name for an endpoint in the daemon's namespace. */
export function tunNameFor(key: string): string {
  return 'sl' + createHash('sha1').update(key).digest('hex').slice(0, 10);
}
