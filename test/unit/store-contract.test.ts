// One contract, every Store implementation (the etcd one runs against a real etcd server when
// one is installed; see test/integration/support/etcd.ts):
// load() gives the validated snapshot, watch() after load() reports only later valid changes,
// invalid updates reach onError and leave the watched state alone, stop() ends reports.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { FileStore, StoreError } from '../../src/store/file-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { EtcdStore } from '../../src/store/etcd-store.js';
import { TestEtcd, etcdAvailable, writeClusterDoc } from '../integration/support/etcd.js';
import type { Store, StoreSnapshot } from '../../src/store/store.js';

interface Harness {
  store: Store;
  /** Publishes a new document; resolves once written (not once observed). */
  apply(doc: unknown): Promise<void>;
}

const doc = (mtu: number, subnet2 = '10.244.2.0/24') => ({
  network: { Network: '10.244.0.0/16', Backend: { Type: 'udp' }, MTU: mtu },
  hosts: [
    { name: 'h1', publicIP: '10.99.0.1', subnet: '10.244.1.0/24' },
    { name: 'h2', publicIP: '10.99.0.2', subnet: subnet2 },
  ],
  manifests: [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', labels: { x: 'y' } }, spec: { nodeName: 'h1' }, status: { podIP: '10.244.1.9' } }],
});

const dirs: string[] = [];
const implementations: Array<[string, (initial: unknown) => Promise<Harness>]> = [
  ['FileStore', async (initial) => {
    const dir = await mkdtemp(join(tmpdir(), 'sllt-contract-'));
    dirs.push(dir);
    const path = join(dir, 'cluster.yaml');
    await writeFile(path, stringify(initial));
    return { store: new FileStore(path, { debounceMs: 20 }), apply: (d) => writeFile(path, stringify(d)) };
  }],
  ['MemoryStore', async (initial) => {
    const store = new MemoryStore(initial);
    return { store, apply: async (d) => { try { store.update(d); } catch { /* reported through onError */ } } };
  }],
];

const etcds: TestEtcd[] = [];
if (etcdAvailable()) {
  implementations.push(['EtcdStore', async (initial) => {
    const etcd = await TestEtcd.start('contract');
    etcds.push(etcd);
    const client = etcd.client();
    await writeClusterDoc(client, initial as Parameters<typeof writeClusterDoc>[1]);
    return { store: new EtcdStore({ endpoints: etcd.url }), apply: (d) => writeClusterDoc(client, d as Parameters<typeof writeClusterDoc>[1]) };
  }]);
}

async function waitFor(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  for (const e of etcds) await e.close();
});

for (const [name, make] of implementations) {
  describe(`Store contract: ${name}`, () => {
    it('load, watch, reject invalid, stop', async () => {
      const h = await make(doc(1500));
      try {
        const s0 = await h.store.load();
        assert.equal(s0.config.mtu, 1500);
        assert.deepEqual(s0.config.backend, { type: 'udp', port: 8285, vni: 1 });
        assert.deepEqual(s0.endpoints.map((e) => [e.namespace, e.name, e.host, e.ip, e.ifname, e.labels]), [['default', 'a', 'h1', '10.244.1.9', 'eth0', { x: 'y' }]]);

        const changes: StoreSnapshot[] = [];
        const errors: Error[] = [];
        const stop = h.store.watch((s) => changes.push(s), (e) => errors.push(e));
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(changes.length, 0, 'nothing changed since load()');

        await h.apply(doc(9000));
        await waitFor('a change', () => changes.length === 1);
        assert.equal(changes[0].config.mtu, 9000);

        await h.apply(doc(1400, '10.9.0.0/24'));
        await waitFor('an error', () => errors.length === 1);
        assert.ok(errors[0] instanceof StoreError);
        assert.match(errors[0].message, /hosts\[1\]\.subnet: 10\.9\.0\.0\/24 is not inside network 10\.244\.0\.0\/16/);
        assert.equal(changes.length, 1);

        await h.apply(doc(1400));
        await waitFor('the fixed change', () => changes.length === 2);
        assert.equal(changes[1].config.mtu, 1400);

        stop();
        await h.apply(doc(1300));
        await new Promise((r) => setTimeout(r, 150));
        assert.equal(changes.length, 2);
      } finally {
        await h.store.close();
      }
    });
  });
}
