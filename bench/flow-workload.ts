// Synthetic policy workloads for the flow/policy benches: namespaces of pods with
// app labels and, per namespace, Kubernetes NetworkPolicies (allow ingress on a
// port from another app) plus a Calico policy with Log/Deny/Allow rules — enough
// policies that each pod is selected by several, as on a busy cluster.

import { compile } from '../src/policy/compiler.js';
import { resourcesFromObjects } from '../src/policy/manifests.js';
import type { PolicySnapshot } from '../src/policy/snapshot.js';

export interface Workload {
  snapshot: PolicySnapshot;
  /** Pod addresses as int32, and which namespace/pod index each is. */
  podIPs: Int32Array;
  policies: number;
  compileMs: number;
}

const APPS = 10;

function podIP(n: number, p: number): string {
  return `10.${100 + (n >> 8)}.${n & 255}.${10 + p}`;
}

export function ipToInt(s: string): number {
  const [a, b, c, d] = s.split('.').map(Number);
  return ((a << 24) | (b << 16) | (c << 8) | d) | 0;
}

/** `namespaces` x `podsPerNs` pods; `policiesPerNs` policies per namespace (one in ten Calico). */
export function makeWorkload(namespaces: number, podsPerNs: number, policiesPerNs: number): Workload {
  const objects: object[] = [];
  const ips: number[] = [];
  for (let n = 0; n < namespaces; n++) {
    const ns = `ns${n}`;
    objects.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { team: `t${n % 7}` } } });
    for (let p = 0; p < podsPerNs; p++) {
      const ip = podIP(n, p);
      ips.push(ipToInt(ip));
      objects.push({
        apiVersion: 'v1', kind: 'Pod',
        metadata: { name: `pod${p}`, namespace: ns, labels: { app: `a${p % APPS}`, tier: p % 2 === 0 ? 'web' : 'db' } },
        spec: { containers: [{ name: 'c', image: 'x', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }] },
        status: { podIP: ip },
      });
    }
    for (let k = 0; k < policiesPerNs; k++) {
      if (k % 10 === 9) {
        objects.push({
          apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name: `cp${k}`, namespace: ns },
          spec: {
            order: 100 + k, selector: `app == 'a${k % APPS}'`, types: ['Ingress', 'Egress'],
            ingress: [
              { action: 'Log', protocol: 'TCP', destination: { ports: [9000 + k] } },
              { action: 'Deny', protocol: 'TCP', source: { nets: ['192.168.0.0/16'] } },
              { action: 'Allow', protocol: 'TCP', source: { selector: `tier == 'web'` }, destination: { ports: ['8000:8099'] } },
            ],
            egress: [{ action: 'Deny', protocol: 'UDP', destination: { ports: [5353] } }, { action: 'Allow' }],
          },
        });
      } else {
        objects.push({
          apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: `np${k}`, namespace: ns },
          spec: {
            podSelector: { matchLabels: { app: `a${k % APPS}` } },
            policyTypes: ['Ingress'],
            ingress: [{
              from: [{ podSelector: { matchLabels: { app: `a${(k + 1) % APPS}` } } }, { namespaceSelector: { matchLabels: { team: `t${k % 7}` } } }],
              ports: [{ protocol: 'TCP', port: 8000 + (k % 100) }],
            }],
          },
        });
      }
    }
  }
  const t0 = performance.now();
  const snapshot = compile(resourcesFromObjects(objects, 'bench'));
  return { snapshot, podIPs: Int32Array.from(ips), policies: namespaces * policiesPerNs, compileMs: performance.now() - t0 };
}

/** A small deterministic PRNG (mulberry32), so runs are comparable. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
