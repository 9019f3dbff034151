// Fuzzing the cluster file loader: whatever the input, it either yields a snapshot that keeps the
// store's invariants or throws a StoreError whose every line names the file. Nothing else escapes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { parseClusterText, validateClusterDoc } from '../../src/store/cluster-file.js';
import { cidrContains, parseCidr, parseIp, type Cidr } from '../../src/store/cidr.js';
import { StoreError } from '../../src/store/errors.js';
import type { StoreSnapshot } from '../../src/store/store.js';

const base = () => ({
  network: { Network: '10.244.0.0/16', SubnetLen: 24, IPv6Network: 'fd00:10:244::/56', Backend: { Type: 'vxlan', Port: 8472, VNI: 1 }, MTU: 1500 },
  hosts: [
    { name: 'h1', publicIP: '10.99.0.1', subnet: '10.244.1.0/24', ipv6Subnet: 'fd00:10:244:1::/64', vtepMAC: '02:00:0a:f4:01:00', port: 8472 },
    { name: 'h2', publicIP: '10.99.0.2', subnet: '10.244.2.0/24' },
  ],
  manifests: [
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', namespace: 'x', labels: { k: 'v' }, annotations: { 'sluice.io/netns': 'n-a' } },
      spec: { nodeName: 'h1' }, status: { podIP: '10.244.1.2', podIPs: [{ ip: '10.244.1.2' }, { ip: 'fd00:10:244:1::2' }] } },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'b' }, spec: { nodeName: 'h2' }, status: { podIP: '10.244.2.2' } },
  ],
});

/** Every path to a value inside the document. */
function paths(v: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}
const ALL_PATHS = paths(base()).filter((p) => p.length > 0);

function setAt(doc: any, path: Array<string | number>, value: unknown): any {
  let o = doc;
  for (const k of path.slice(0, -1)) o = o[k];
  const last = path[path.length - 1];
  if (value === undefined) delete o[last];
  else o[last] = value;
  return doc;
}

// Plausible-looking replacements find more semantic paths than random noise alone.
const nearMiss = fc.oneof(
  fc.constantFrom('10.244.1.0/24', '10.244.3.0/25', '10.245.0.0/24', '10.244.1.1', 'fd00:10:244:1::/64', '::/0', '02:00:00:00:00:01',
    '01:00:00:00:00:00', 'h1', 'h2', '', 'udp', 'gre', '10.99.0.1', '0.0.0.0/0', '10.244.1.255', '10.244.1.0', 24, 31, 0, -1, 65536, 1.5),
  fc.ipV4().map((ip) => `${ip}/${ip.length % 33}`),
  fc.ipV6(),
  fc.anything(),
);

function checkInvariants(s: StoreSnapshot): void {
  const net = parseCidr(s.config.network, 4) as Cidr;
  assert.equal(typeof net, 'object');
  const subnets = new Map<string, Cidr>();
  for (const h of s.hosts) {
    const sub = parseCidr(h.subnet, 4) as Cidr;
    assert.ok(cidrContains(net, sub) && sub.prefix === s.config.subnetLen, `${h.subnet} in ${s.config.network}`);
    subnets.set(h.name, sub);
  }
  assert.equal(new Set(s.hosts.map((h) => h.subnet)).size, s.hosts.length);
  for (const e of s.endpoints) {
    const sub = subnets.get(e.host);
    assert.ok(sub !== undefined && cidrContains(sub, parseIp(e.ip, 4)!), `${e.ip} in ${e.host}`);
  }
}

function expectStoreErrorOrValid(run: () => StoreSnapshot): void {
  let s: StoreSnapshot;
  try {
    s = run();
  } catch (e) {
    assert.ok(e instanceof StoreError, `unexpected ${String(e)}`);
    for (const line of e.message.split('\n')) assert.ok(line.startsWith('cluster.yaml: '), line);
    return;
  }
  checkInvariants(s);
}

describe('cluster file fuzz', () => {
  it('single-field replacements and deletions', () => {
    fc.assert(fc.property(fc.constantFrom(...ALL_PATHS), fc.option(nearMiss, { nil: undefined }), (path, value) => {
      expectStoreErrorOrValid(() => validateClusterDoc(setAt(base(), path, value), 'cluster.yaml'));
    }), { numRuns: 2000 });
  });

  it('several replacements at once, through YAML text', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(...ALL_PATHS), nearMiss), { maxLength: 4 }), (edits) => {
      const doc = base();
      for (const [p, v] of edits) {
        try { setAt(doc, p, v); } catch { /* the path vanished under an earlier edit */ }
      }
      let text: string;
      try { text = stringify(doc); } catch { return; }
      expectStoreErrorOrValid(() => parseClusterText(text, 'cluster.yaml'));
    }), { numRuns: 1000 });
  });

  it('arbitrary text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (text) => {
      expectStoreErrorOrValid(() => parseClusterText(text, 'cluster.yaml'));
    }), { numRuns: 1000 });
  });
});
