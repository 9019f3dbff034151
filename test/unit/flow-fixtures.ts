// Shared by the flow-*/workers-* tests and benches: real snapshots compiled
// from manifest objects, flow keys, and packets in buffers.

import { Endpoint } from '../../src/dataplane/endpoint.js';
import { HEADROOM } from '../../src/dataplane/packet-batch.js';
import type { PolicyGate, Verdict } from '../../src/dataplane/policy-gate.js';
import { Drop } from '../../src/packet/drop.js';
import { FlowKeyParser } from '../../src/packet/flow-key-parser.js';
import { FlowKey } from '../../src/packet/flow-key.js';
import { compile } from '../../src/policy/compiler.js';
import { resourcesFromObjects } from '../../src/policy/manifests.js';
import type { PolicySnapshot } from '../../src/policy/snapshot.js';
import { HEADER_WORDS, newRequest, Q_SIDES, REQUEST_WORDS, RESULT_WORDS } from '../../src/workers/batch-format.js';

export function ns(name: string): object {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { ns: name } } };
}

export function pod(namespace: string, name: string, ip: string, labels: Record<string, string> = {}): object {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace, labels: { pod: name, ...labels } },
    spec: { containers: [{ name: 'c', image: 'x', ports: [{ name: 'http', containerPort: 80, protocol: 'TCP' }] }] },
    status: { podIP: ip },
  };
}

/** A Kubernetes NetworkPolicy selecting `podLabel` that allows ingress from `fromLabel` on TCP `port` only. */
export function allowIngressFrom(namespace: string, name: string, podLabel: string, fromLabel: string, port: number): object {
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy',
    metadata: { name, namespace },
    spec: {
      podSelector: { matchLabels: { pod: podLabel } },
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ podSelector: { matchLabels: { pod: fromLabel } } }], ports: [{ protocol: 'TCP', port }] }],
    },
  };
}

/** A Calico policy denying all egress of `podLabel` to TCP `port`, logging first. */
export function calicoDenyEgress(namespace: string, name: string, podLabel: string, port: number, order = 10): object {
  return {
    apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy',
    metadata: { name, namespace },
    spec: {
      order,
      selector: `pod == '${podLabel}'`,
      types: ['Egress'],
      egress: [
        { action: 'Log', protocol: 'TCP', destination: { ports: [port] } },
        { action: 'Deny', protocol: 'TCP', destination: { ports: [port] } },
        { action: 'Allow' },
      ],
    },
  };
}

export function snapshotOf(objects: readonly object[], generation?: number): PolicySnapshot {
  return compile(resourcesFromObjects(objects, 'test'), generation === undefined ? {} : { generation });
}

/** "10.0.1.10" -> int32. */
export function ip4(s: string): number {
  const p = s.split('.').map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) | 0;
}

/** Namespaces x, y with pods a, b (x: 10.0.1.10/11, y: 10.0.2.10/11) plus `policies`. */
export function basicSnapshot(policies: readonly object[] = [], generation?: number): PolicySnapshot {
  return snapshotOf([
    ns('x'), ns('y'),
    pod('x', 'a', '10.0.1.10'), pod('x', 'b', '10.0.1.11'),
    pod('y', 'a', '10.0.2.10'), pod('y', 'b', '10.0.2.11'),
    ...policies,
  ], generation);
}

// --- packets through a gate -------------------------------------------------------

/** A (never opened) endpoint for `ns/name` at `ip`. */
export function endpoint(namespace: string, name: string, ip: string, ipv6?: string): Endpoint {
  return new Endpoint({ namespace, name, host: 'h1', ip, ipv6, ifname: 'eth0', labels: {} }, 1450, 64);
}

/** Parses packets as the forwarder does (in a buffer with headroom) and offers them to a gate. */
export class GateDriver {
  readonly key = new FlowKey();
  readonly parser = new FlowKeyParser();
  readonly buf = Buffer.alloc(HEADROOM + 65536);

  constructor(public gate: PolicyGate) {}

  /** Parses `pkt` into key/parser (throws on a malformed fixture). */
  parse(pkt: Buffer): FlowKey {
    pkt.copy(this.buf, HEADROOM);
    const r = this.parser.parse(this.buf, HEADROOM, pkt.length, this.key);
    if (r !== Drop.None) throw new Error(`fixture packet does not parse: drop ${r}`);
    return this.key;
  }

  send(pkt: Buffer, from: Endpoint | undefined, to: Endpoint | undefined): Verdict {
    this.parse(pkt);
    return this.gate.decide(this.key, this.parser, this.parser.ipLength, from, to);
  }
}

/** A flow to pack into a request: the key and the Side mask. */
export interface FlowSpec {
  key: FlowKey;
  sides: number;
}

/** Packs flows into a request of `generation` (batch-format.ts). */
export function requestOf(flows: readonly FlowSpec[], generation: number): Int32Array {
  const req = newRequest(generation, flows.length);
  flows.forEach((f, i) => {
    const q = HEADER_WORDS + i * REQUEST_WORDS;
    f.key.writeTo(req, q);
    req[q + Q_SIDES] = f.sides;
  });
  return req;
}

/** Result `i` of a response as named fields. */
export function resultAt(res: Int32Array, i: number): { egress: number; egressPolicy: number; egressRule: number; ingress: number; ingressPolicy: number; ingressRule: number; logSide: number; logPolicy: number; logRule: number } {
  const o = HEADER_WORDS + i * RESULT_WORDS;
  return {
    egress: res[o], egressPolicy: res[o + 1], egressRule: res[o + 2],
    ingress: res[o + 3], ingressPolicy: res[o + 4], ingressRule: res[o + 5],
    logSide: res[o + 6], logPolicy: res[o + 7], logRule: res[o + 8],
  };
}
