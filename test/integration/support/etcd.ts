// A real etcd for a test: loopback ports of its own (picked free by the kernel), a temporary data
// directory, killed by its own PID (also if the test process exits abruptly), restartable on the
// same directory. Plus helpers to write a cluster document into it.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Etcd3, IRequestOp } from 'etcd3';
import { createClient, listAll } from '../../../src/store/etcd/client.js';
import { etcdConfigJSON } from '../../../src/store/etcd/config.js';
import { type EtcdLayout, configKey, makeLayout, resourceId, resourceKey, subnetKey } from '../../../src/store/etcd/keys.js';
import { hostLeaseJSON } from '../../../src/store/etcd/lease-record.js';
import { EtcdServer, etcdAvailable, freePort } from '../../../src/store/etcd-server.js';
import { validateClusterDoc } from '../../../src/store/cluster-file.js';
import { defaultVtepMAC } from '../../../src/store/validate.js';
import { parseCidr } from '../../../src/store/cidr.js';

export { etcdAvailable };

/** Why a test is skipped when etcd is not installed (false: it runs). */
export const skipWithoutEtcd: string | false = etcdAvailable() ? false : 'etcd not installed (apt-get install etcd-server)';

const live = new Set<EtcdServer>();
// A test process that dies without running its `after` hooks must not leave etcd behind.
process.once('exit', () => {
  for (const s of live) if (s.pid !== undefined) try { process.kill(s.pid, 'SIGKILL'); } catch { /* already gone */ }
});

export class TestEtcd {
  private constructor(readonly server: EtcdServer, readonly dir: string) {}

  static async start(label = 'etcd'): Promise<TestEtcd> {
    const dir = await mkdtemp(join(tmpdir(), `sle-${label}-`));
    let lastErr: unknown;
    // A port picked free can be taken before etcd binds it; try a few pairs.
    for (let i = 0; i < 3; i++) {
      try {
        const server = await EtcdServer.start({ dataDir: join(dir, 'data'), clientPort: await freePort(), peerPort: await freePort() });
        live.add(server);
        return new TestEtcd(server, dir);
      } catch (e) {
        lastErr = e;
      }
    }
    await rm(dir, { recursive: true, force: true });
    throw lastErr;
  }

  get url(): string {
    return this.server.url;
  }

  /** A client with Sluice's settings; closed by close(). */
  client(): Etcd3 {
    const c = createClient({ endpoints: this.url });
    this.#clients.push(c);
    return c;
  }

  readonly #clients: Etcd3[] = [];

  async log(): Promise<string> {
    return readFile(this.server.options.logPath, 'utf8').catch(() => '');
  }

  /** Kills etcd (by PID), removes its data. Safe to call twice. */
  async close(): Promise<void> {
    for (const c of this.#clients.splice(0)) c.close();
    await this.server.kill();
    live.delete(this.server);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Makes etcd hold exactly a cluster document (the cluster file's shape: network, hosts,
 * manifests) in one transaction: config, one reservation (a lease key without an etcd lease) per
 * host, one key per manifest. Keys it does not write are deleted. Invalid documents are written as
 * they are (that is what tests of rejection need), as far as they can be mapped to keys.
 */
export async function writeClusterDoc(client: Etcd3, doc: { network: Record<string, unknown>; hosts?: Record<string, unknown>[]; manifests?: unknown[] }, layout: EtcdLayout = makeLayout()): Promise<void> {
  const want = new Map<string, string>();
  // Config: reuse the file store's normalisation when the network part is valid, else write as is.
  let cfg: string;
  try {
    cfg = etcdConfigJSON(validateClusterDoc({ network: doc.network }, 'doc').config);
  } catch {
    cfg = JSON.stringify(doc.network);
  }
  want.set(configKey(layout), cfg);
  const backend = JSON.parse(cfg).Backend ?? { Type: 'vxlan' };
  for (const h of doc.hosts ?? []) {
    const subnet = String(h.subnet);
    const c = parseCidr(subnet, 4);
    const vtepMAC = typeof h.vtepMAC === 'string' ? h.vtepMAC : typeof c === 'string' ? '02:00:00:00:00:01' : defaultVtepMAC(c);
    const rec = { name: String(h.name), publicIP: String(h.publicIP), subnet, vtepMAC, ...(h.port === undefined ? {} : { port: Number(h.port) }) };
    want.set(subnetKey(layout, subnet, h.ipv6Subnet as string | undefined),
      hostLeaseJSON(rec, { type: backend.Type, port: backend.Port ?? 0, vni: backend.VNI ?? 1 }));
  }
  for (const m of doc.manifests ?? []) {
    const id = resourceId(m);
    if (typeof id === 'string') throw new Error(`writeClusterDoc: ${id}`);
    want.set(resourceKey(layout, id), JSON.stringify(m));
  }
  const now = await listAll(client, layout);
  const ops: IRequestOp[] = [];
  for (const kv of [...(now.config ? [now.config] : []), ...now.subnets, ...now.resources]) {
    if (!want.has(kv.key)) ops.push({ request_delete_range: { key: Buffer.from(kv.key) } });
  }
  for (const [key, value] of want) ops.push({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } });
  await client.kv.txn({ success: ops });
}

/** Polls `cond` every 20 ms; fails with `what` after `ms`. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
