import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Endpoint } from '../../src/dataplane/endpoint.js';
import type { PacketBatch } from '../../src/dataplane/packet-batch.js';
import { Verdict } from '../../src/dataplane/policy-gate.js';
import { FlowState } from '../../src/flow/flow-entry.js';
import { PolicyEnforcer, type PolicyEnforcerOptions } from '../../src/flow/policy-enforcer.js';
import { FlowKey } from '../../src/packet/flow-key.js';
import { Decision } from '../../src/workers/batch-format.js';
import type { PolicyEvaluator } from '../../src/workers/evaluator.js';
import { icmp4DestUnreachable, icmp4FragNeeded, icmp6PacketTooBig } from '../../src/packet/icmp-errors.js';
import { allowIngressFrom, basicSnapshot, endpoint, GateDriver, ip4, ns, snapshotOf } from './flow-fixtures.js';
import { TCP, tcp4, tcp6, udp4 } from './packet-fixtures.js';
import { gcsDuring } from './gc-count.js';

const xa = endpoint('x', 'a', '10.0.1.10');
const xb = endpoint('x', 'b', '10.0.1.11');
const ya = endpoint('y', 'a', '10.0.2.10');

/** x/a accepts only TCP 80 from x/<podLabel>. */
const onlyFrom = (podLabel: string) => basicSnapshot([allowIngressFrom('x', 'pa', 'a', podLabel, 80)]);

interface Harness {
  gate: PolicyEnforcer;
  drv: GateDriver;
  released: { pkt: Buffer; from: Endpoint | undefined; to: Endpoint | undefined }[];
  /** Re-runs released packets through the gate, as Forwarder.reinject would; returns their verdicts. */
  reinject(): Verdict[];
}

function harness(opts: PolicyEnforcerOptions): Harness {
  const released: Harness['released'] = [];
  const gate = new PolicyEnforcer({
    timers: false,
    ...opts,
    onRelease: (b: PacketBatch, n, from, to) => {
      for (let i = 0; i < n; i++) {
        released.push({ pkt: Buffer.from(b.buf.subarray(b.offsets[i], b.offsets[i] + b.lengths[i])), from: from[i], to: to[i] });
      }
    },
  });
  const drv = new GateDriver(gate);
  return {
    gate, drv, released,
    reinject: () => released.splice(0).map((r) => drv.send(r.pkt, r.from, r.to)),
  };
}

for (const mode of ['pool', 'inline'] as const) {
  describe(`PolicyEnforcer (${mode})`, () => {
    it('decides new flows by policy, admits replies, denies one direction only', async () => {
      const h = harness({ mode, pool: { threads: 1 } });
      const { gate, drv } = h;
      try {
        gate.setSnapshot(onlyFrom('b'));
        const syn = tcp4('10.0.1.11', '10.0.1.10', 40000, 80, TCP.SYN);
        const v = drv.send(syn, xb, xa);
        if (mode === 'pool') {
          assert.equal(v, Verdict.Held);
          // More packets of the same flow wait with the first; no second evaluation.
          assert.equal(drv.send(tcp4('10.0.1.11', '10.0.1.10', 40000, 80, TCP.ACK), xb, xa), Verdict.Held);
          assert.equal(gate.held.held, 2);
          gate.endBatch();
          await gate.settled();
          assert.equal(gate.missTasks, 1);
          assert.equal(h.released.length, 2);
          assert.deepEqual(h.released[0].pkt, syn, 'released byte for byte');
          assert.equal(h.released[0].from, xb);
          assert.equal(h.released[0].to, xa);
          assert.deepEqual(h.reinject(), [Verdict.Allow, Verdict.Allow]);
        } else {
          assert.equal(v, Verdict.Allow);
        }
        assert.equal(gate.evaluated, 1);
        // The reply direction is admitted by the same entry.
        assert.equal(drv.send(tcp4('10.0.1.10', '10.0.1.11', 80, 40000, TCP.SYN | TCP.ACK), xa, xb), Verdict.Allow);
        const e = gate.flow(drv.parse(syn))!;
        assert.equal(e.state, FlowState.Allowed);
        assert.equal(e.ingress, Decision.RuleAllow);
        assert.equal(e.ingressPolicy, 'KubernetesNetworkPolicy/x/pa');
        assert.equal(e.ingressRule, 0);
        assert.equal(e.egress, Decision.NoPolicy);
        assert.equal(e.revPackets, 1);
        assert.equal(e.fwdPackets, mode === 'pool' ? 2 : 1);

        // y/a (remote) -> x/a: this host checks x/a's ingress only; denied.
        const bad = tcp4('10.0.2.10', '10.0.1.10', 40001, 80, TCP.SYN);
        if (mode === 'pool') {
          assert.equal(drv.send(bad, undefined, xa), Verdict.Held);
          gate.endBatch();
          await gate.settled();
          assert.equal(h.released.length, 0);
          assert.equal(gate.held.dropped, 1);
        } else {
          assert.equal(drv.send(bad, undefined, xa), Verdict.Deny);
        }
        assert.equal(drv.send(bad, undefined, xa), Verdict.Deny, 'the cached deny answers at once');
        const d = gate.flow(drv.parse(bad))!;
        assert.equal(d.state, FlowState.Denied);
        assert.equal(d.ingress, Decision.DefaultDeny);
        assert.equal(d.fwdPackets, 2, 'the dropped held packet is counted too');
        // The reverse direction of a denied flow is a flow of its own: x/a's egress is open.
        const back = tcp4('10.0.1.10', '10.0.2.10', 80, 40001, TCP.ACK);
        const vb = drv.send(back, xa, undefined);
        assert.equal(vb, Verdict.Allow, 'unselected egress: allowed without evaluation');
        assert.equal(gate.unselected, 1);
        assert.equal(gate.evaluated, 2);
      } finally {
        await gate.close();
      }
    });

    it('endpoints no policy selects are allowed without evaluation', async () => {
      const h = harness({ mode, pool: { threads: 1 } });
      try {
        h.gate.setSnapshot(onlyFrom('b'));
        assert.equal(h.drv.send(udp4('10.0.2.10', '10.0.1.11', 5000, 53), ya, xb), Verdict.Allow);
        assert.equal(h.drv.send(udp4('10.0.2.10', '8.8.8.8', 5000, 53), ya, undefined), Verdict.Allow);
        assert.equal(h.gate.evaluated, 0);
        assert.equal(h.gate.missTasks, 0);
        assert.equal(h.gate.unselected, 2);
      } finally {
        await h.gate.close();
      }
    });

    it('before any snapshot every flow is open', async () => {
      const h = harness({ mode, pool: { threads: 1 } });
      try {
        assert.equal(h.drv.send(tcp4('10.0.2.10', '10.0.1.10', 1, 80), undefined, xa), Verdict.Allow);
        assert.equal(h.gate.generation, 0);
      } finally {
        await h.gate.close();
      }
    });

    it('a policy change revokes a denied connection in both directions and leaves allowed ones flowing', async () => {
      const h = harness({ mode, pool: { threads: 1 } });
      const { gate, drv } = h;
      const establish = async (src: string, dst: string, sport: number, from: Endpoint | undefined, to: Endpoint | undefined): Promise<void> => {
        if (drv.send(tcp4(src, dst, sport, 80, TCP.SYN), from, to) === Verdict.Held) {
          gate.endBatch();
          await gate.settled();
          assert.deepEqual(h.reinject(), [Verdict.Allow]);
        }
        assert.equal(drv.send(tcp4(dst, src, 80, sport, TCP.SYN | TCP.ACK), to, from), Verdict.Allow);
      };
      try {
        gate.setSnapshot(onlyFrom('b'));
        await establish('10.0.1.11', '10.0.1.10', 40000, xb, xa); // x/b -> x/a: allowed now, denied later
        await establish('10.0.2.10', '10.0.2.11', 40001, ya, undefined); // y/a -> y/b: unselected
        const kaKey = new FlowKey().copyFrom(drv.parse(tcp4('10.0.1.11', '10.0.1.10', 40000, 80)));
        const kyKey = new FlowKey().copyFrom(drv.parse(tcp4('10.0.2.10', '10.0.2.11', 40001, 80)));
        const kySlot = gate.cache.peekExact(kyKey);
        const gen = gate.setSnapshot(onlyFrom('c'));
        // Until revalidated, packets keep flowing on the old verdict: never held again.
        assert.equal(drv.send(tcp4('10.0.1.11', '10.0.1.10', 40000, 80, TCP.ACK), xb, xa), Verdict.Allow);
        await gate.revalidated();
        assert.equal(drv.send(tcp4('10.0.1.11', '10.0.1.10', 40000, 80, TCP.ACK), xb, xa), Verdict.Deny);
        assert.equal(drv.send(tcp4('10.0.1.10', '10.0.1.11', 80, 40000, TCP.ACK), xa, xb), Verdict.Deny, 'replies stop too');
        const ka = gate.flow(kaKey)!;
        assert.equal(ka.state, FlowState.Revoked);
        assert.equal(ka.generation, gen);
        assert.equal(ka.ingress, Decision.DefaultDeny);
        assert.equal(drv.send(tcp4('10.0.2.10', '10.0.2.11', 40001, 80, TCP.ACK), ya, undefined), Verdict.Allow);
        assert.equal(gate.cache.peekExact(kyKey), kySlot, 'same entry, updated in place');
        const ky = gate.flow(kyKey)!;
        assert.equal(ky.generation, gen);
        assert.equal(ky.fwdPackets, 2);
        assert.equal(gate.revoked, 1);
        assert.equal(gate.held.heldTotal, mode === 'pool' ? 1 : 0, 'only the first SYN was ever held');
        // And back: the policy allows it again; the same connection resumes.
        gate.setSnapshot(onlyFrom('b'));
        await gate.revalidated();
        assert.equal(drv.send(tcp4('10.0.1.10', '10.0.1.11', 80, 40000, TCP.ACK), xa, xb), Verdict.Allow);
        assert.equal(gate.reinstated, 1);
      } finally {
        await gate.close();
      }
    });

    it('an established flow the new policy denies stops within one second, among 20,000 cached flows', async (t) => {
      const h = harness({ mode, pool: { threads: 1 }, held: { capacity: 8192 } });
      const { gate, drv } = h;
      try {
        gate.setSnapshot(onlyFrom('b'));
        // 20,000 allowed flows into x/a (from x/b's many ports, remote side), 64 per batch,
        // waiting for verdicts before maxMissTasks (16) requests are in flight.
        for (let p = 0; p < 20_000; p++) {
          drv.send(tcp4('10.0.1.11', '10.0.1.10', 10_000 + p, 80, TCP.SYN), undefined, xa);
          if (p % 64 === 63) gate.endBatch();
          if (p % 1024 === 1023) await gate.settled();
        }
        gate.endBatch();
        await gate.settled();
        h.released.length = 0;
        assert.equal(gate.shed, 0);
        assert.equal(gate.cache.size, 20_000);
        const probe = tcp4('10.0.1.11', '10.0.1.10', 10_000 + 12_345, 80, TCP.ACK);
        assert.equal(drv.send(probe, undefined, xa), Verdict.Allow);
        const t0 = performance.now();
        gate.setSnapshot(onlyFrom('c'));
        // Keep sending the probe every 5 ms, as a live connection would.
        let stoppedAfter = -1;
        await new Promise<void>((resolve) => {
          const iv = setInterval(() => {
            gate.endBatch();
            if (drv.send(probe, undefined, xa) === Verdict.Deny) {
              stoppedAfter = performance.now() - t0;
              clearInterval(iv);
              resolve();
            } else if (performance.now() - t0 > 3000) {
              clearInterval(iv);
              resolve();
            }
          }, 5);
        });
        assert.ok(stoppedAfter >= 0 && stoppedAfter < 1000, `stopped after ${stoppedAfter.toFixed(1)} ms`);
        await gate.revalidated();
        let denied = 0;
        for (const e of gate.flows()) if (e.state === FlowState.Revoked) denied++;
        assert.equal(denied, 20_000);
        t.diagnostic(`probe denied after ${stoppedAfter.toFixed(1)} ms; full pass ${gate.revalidator.lastPassMs.toFixed(1)} ms`);
      } finally {
        await gate.close();
      }
    });
  });
}

// --- failure paths, with evaluators that misbehave on purpose ------------------------------

/** An evaluator whose answers the test controls. */
class ManualEvaluator implements PolicyEvaluator {
  readonly sync = false;
  readonly pending: { req: Int32Array; resolve: (r: Int32Array) => void; reject: (e: Error) => void }[] = [];
  setSnapshot(): void {}
  evaluate(req: Int32Array): Promise<Int32Array> {
    return new Promise((resolve, reject) => this.pending.push({ req, resolve, reject }));
  }
  evaluateSync(): void { throw new Error('not sync'); }
  close(): Promise<void> { return Promise.resolve(); }
}

describe('PolicyEnforcer failure paths', () => {
  it('gives up flows whose verdict does not come within pendingTimeoutMs, dropping their packets', async () => {
    let now = 0;
    const ev = new ManualEvaluator();
    const h = harness({ evaluator: ev, clock: () => now, pendingTimeoutMs: 5000, sweepIntervalMs: 1000 });
    const { gate, drv } = h;
    gate.setSnapshot(onlyFrom('b'));
    const syn = tcp4('10.0.1.11', '10.0.1.10', 40000, 80, TCP.SYN);
    assert.equal(drv.send(syn, xb, xa), Verdict.Held);
    gate.endBatch();
    assert.equal(ev.pending.length, 1);
    now = 6000;
    gate.tick();
    assert.equal(gate.abandoned, 1);
    assert.equal(gate.held.held, 0);
    assert.equal(gate.held.dropped, 1);
    assert.equal(gate.cache.size, 0);
    // A late verdict is ignored; the next packet starts a new evaluation.
    const res = new Int32Array(2 + 9);
    res[1] = 1;
    ev.pending[0].resolve(res);
    await gate.settled();
    assert.equal(h.released.length, 0);
    assert.equal(drv.send(syn, xb, xa), Verdict.Held);
    gate.endBatch();
    assert.equal(ev.pending.length, 2);
    await gate.close();
  });

  it('an evaluation error drops the waiting packets and lets the next packet retry', async () => {
    const ev = new ManualEvaluator();
    const h = harness({ evaluator: ev });
    const { gate, drv } = h;
    gate.setSnapshot(onlyFrom('b'));
    const syn = tcp4('10.0.1.11', '10.0.1.10', 40000, 80, TCP.SYN);
    drv.send(syn, xb, xa);
    gate.endBatch();
    ev.pending[0].reject(new Error('worker died'));
    await gate.settled();
    assert.equal(gate.evalErrors, 1);
    assert.equal(gate.held.dropped, 1);
    assert.equal(drv.send(syn, xb, xa), Verdict.Held);
    await gate.close();
  });

  it('sheds new flows while maxMissTasks requests are in flight, and batches one request per batch', async () => {
    const ev = new ManualEvaluator();
    const h = harness({ evaluator: ev, maxMissTasks: 1 });
    const { gate, drv } = h;
    gate.setSnapshot(onlyFrom('b'));
    for (let p = 0; p < 10; p++) drv.send(tcp4('10.0.1.11', '10.0.1.10', 1000 + p, 80), xb, xa);
    gate.endBatch();
    assert.equal(ev.pending.length, 1, 'ten misses, one request');
    assert.equal(ev.pending[0].req[1], 10);
    assert.equal(drv.send(tcp4('10.0.1.11', '10.0.1.10', 2000, 80), xb, xa), Verdict.Held);
    assert.equal(gate.shed, 1);
    assert.equal(gate.held.held, 10);
    await gate.close();
  });

  it('flushes the misses of a batch in a microtask when endBatch is not called', async () => {
    const ev = new ManualEvaluator();
    const h = harness({ evaluator: ev });
    h.gate.setSnapshot(onlyFrom('b'));
    for (let p = 0; p < 3; p++) h.drv.send(tcp4('10.0.1.11', '10.0.1.10', 1000 + p, 80), xb, xa);
    assert.equal(ev.pending.length, 0);
    await Promise.resolve();
    assert.equal(ev.pending.length, 1);
    assert.equal(ev.pending[0].req[1], 3);
    await h.gate.close();
  });

  it('rejects contradictory options', () => {
    assert.throws(() => new PolicyEnforcer({ mode: 'inline', evaluator: new ManualEvaluator(), timers: false }),
      /PolicyEnforcer: mode 'inline' contradicts the given evaluator \(sync=false\)/);
    assert.throws(() => new PolicyEnforcer({ maxMissTasks: 0, timers: false }), /PolicyEnforcer: maxMissTasks must be > 0, got 0/);
  });
});

// --- ICMP errors, IPv6, sweeping -------------------------------------------------------

/** An inline enforcer with a 10 s sweep and 60 s UDP idle timeout on a clock the test sets; closed after `run`. */
async function withSweepGate(run: (gate: PolicyEnforcer, drv: GateDriver, clock: { now: number }) => Promise<void> | void): Promise<void> {
  const clock = { now: 0 };
  const gate = new PolicyEnforcer({ mode: 'inline', timers: false, clock: () => clock.now, sweepIntervalMs: 10_000, cache: { udpIdleMs: 60_000 } });
  try {
    await run(gate, new GateDriver(gate), clock);
  } finally {
    await gate.close();
  }
}

describe('PolicyEnforcer: related ICMP errors, IPv6, sweeping', () => {
  const ROUTER4 = ip4('10.0.9.1');

  function icmpError(build: (out: Buffer, pkt: Buffer) => number, quoted: Buffer): Buffer {
    const out = Buffer.alloc(1500);
    const n = build(out, quoted);
    assert.ok(n > 0, 'error built');
    return out.subarray(0, n);
  }

  it('packets the native fast path forwarded count in the flow of the packet decided last, each direction', async () => {
    const gate = new PolicyEnforcer({ mode: 'inline', timers: false });
    const drv = new GateDriver(gate);
    try {
      gate.setSnapshot(onlyFrom('b'));
      const syn = tcp4('10.0.1.11', '10.0.1.10', 40000, 80, TCP.SYN);
      assert.equal(drv.send(syn, undefined, xa), Verdict.Allow);
      gate.addForwarded(10, 15_000);
      const reply = tcp4('10.0.1.10', '10.0.1.11', 80, 40000, TCP.ACK);
      assert.equal(drv.send(reply, xa, undefined), Verdict.Allow);
      gate.addForwarded(4, 400);
      // Nothing allowed last: a denied packet, then its harvest, must not count anywhere.
      assert.equal(drv.send(tcp4('10.0.1.11', '10.0.1.10', 40001, 81, TCP.SYN), undefined, xa), Verdict.Deny);
      gate.addForwarded(99, 99);
      const f = gate.flowRecords(false, 10).find((r) => r.srcPort === 40000);
      assert.ok(f);
      assert.equal(f.packets, 1 + 10 + 1 + 4);
      assert.equal(f.bytes, syn.length + 15_000 + reply.length + 400);
      const denied = gate.flowRecords(false, 10).find((r) => r.srcPort === 40001);
      assert.equal(denied?.packets, 1);
    } finally {
      await gate.close();
    }
  });

  it('allows an ICMP error about an allowed flow (to the quoted packet\'s sender), not about others', async () => {
    const gate = new PolicyEnforcer({ mode: 'inline', timers: false });
    const drv = new GateDriver(gate);
    try {
      gate.setSnapshot(onlyFrom('b'));
      // x/b (remote) -> x/a:80 allowed; x/a's reply is answered by a router with "fragmentation needed".
      assert.equal(drv.send(tcp4('10.0.1.11', '10.0.1.10', 40000, 80, TCP.SYN), undefined, xa), Verdict.Allow);
      const reply = tcp4('10.0.1.10', '10.0.1.11', 80, 40000, TCP.ACK, Buffer.alloc(1400));
      const fragNeeded = icmpError((o, p) => icmp4FragNeeded(o, 0, p, 0, p.length, 1280, ROUTER4), reply);
      assert.equal(drv.send(fragNeeded, undefined, xa), Verdict.Allow);
      assert.equal(gate.related, 1);
      // The same error about a flow that was never allowed: an ICMP flow of its own, denied by x/a's ingress.
      const stray = tcp4('10.0.1.10', '10.0.2.10', 80, 40001, TCP.ACK, Buffer.alloc(1400));
      assert.equal(drv.send(icmpError((o, p) => icmp4FragNeeded(o, 0, p, 0, p.length, 1280, ROUTER4), stray), undefined, xa), Verdict.Deny);
      // An error quoting the allowed flow but sent to someone else is not related.
      const other = tcp4('10.0.1.11', '10.0.1.10', 40000, 80, TCP.ACK);
      const wrongWay = icmpError((o, p) => icmp4DestUnreachable(o, 0, p, 0, p.length, 1, ROUTER4), other);
      wrongWay.writeInt32BE(ip4('10.0.1.10'), 16); // redirect it to x/a, who did not send the quoted packet
      assert.equal(drv.send(wrongWay, undefined, xa), Verdict.Deny);
      assert.equal(gate.related, 1);
    } finally {
      await gate.close();
    }
  });

  it('enforces IPv6 flows of dual-stack pods (pool and inline agree), and relates ICMPv6 errors', async () => {
    const dual = (name: string, v4: string, v6: string): object => ({
      apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'x', labels: { pod: name } },
      spec: { containers: [{ name: 'c', image: 'x' }] },
      status: { podIP: v4, podIPs: [{ ip: v4 }, { ip: v6 }] },
    });
    const snap = snapshotOf([ns('x'), dual('a', '10.0.1.10', 'fd00:1::10'), dual('b', '10.0.1.11', 'fd00:1::11'),
      allowIngressFrom('x', 'pa', 'a', 'b', 80)]);
    const a6 = endpoint('x', 'a', '10.0.1.10', 'fd00:1::10');
    for (const mode of ['inline', 'pool'] as const) {
      const h = harness({ mode, pool: { threads: 1 } });
      try {
        h.gate.setSnapshot(snap);
        const decide = async (pkt: Buffer): Promise<Verdict> => {
          const v = h.drv.send(pkt, undefined, a6);
          if (v !== Verdict.Held) return v;
          h.gate.endBatch();
          await h.gate.settled();
          const r = h.reinject();
          return r.length === 0 ? Verdict.Deny : r[0];
        };
        assert.equal(await decide(tcp6('fd00:1::11', 'fd00:1::10', 40000, 80)), Verdict.Allow, `${mode}: b -> a:80`);
        assert.equal(await decide(tcp6('fd00:1::11', 'fd00:1::10', 40000, 81)), Verdict.Deny, `${mode}: b -> a:81`);
        assert.equal(await decide(tcp6('fd00:9::5', 'fd00:1::10', 40000, 80)), Verdict.Deny, `${mode}: outsider -> a:80`);
        const e = h.gate.flow(h.drv.parse(tcp6('fd00:1::11', 'fd00:1::10', 40000, 80)))!;
        assert.equal(e.ingressPolicy, 'KubernetesNetworkPolicy/x/pa');
        const reply = tcp6('fd00:1::10', 'fd00:1::11', 80, 40000, TCP.ACK, Buffer.alloc(1300));
        const router = Buffer.from('fd000009000000000000000000000001', 'hex');
        const tooBig = icmpError((o, p) => icmp6PacketTooBig(o, 0, p, 0, p.length, 1280, router), reply);
        assert.equal(h.drv.send(tooBig, undefined, a6), Verdict.Allow, `${mode}: packet too big about an allowed flow`);
        assert.equal(h.gate.related, 1);
      } finally {
        await h.gate.close();
      }
    }
  });

  it('the periodic sweep removes expired flows nobody looks up', () => withSweepGate(async (gate, drv, clock) => {
    for (let p = 0; p < 100; p++) drv.send(udp4('10.0.2.10', '10.0.1.11', 1000 + p, 53), ya, xb);
    assert.equal(gate.cache.size, 100);
    clock.now = 30_000;
    gate.tick();
    assert.equal(gate.cache.size, 100);
    clock.now = 61_000;
    gate.tick();
    assert.equal(gate.cache.size, 0);
    assert.equal(gate.cache.expired, 100);
  }));

  it('the sweep ages flows: afterwards the flows hit since come first in a dump', () => withSweepGate(async (gate, drv, clock) => {
    const flow = (p: number) => udp4('10.0.2.10', '10.0.1.11', 1000 + p, 53);
    for (let round = 0; round < 2; round++) for (let p = 0; p < 100; p++) drv.send(flow(p), ya, xb);
    const referenced = () => [...gate.cache.dumpSlots()].filter((s) => gate.cache.referenced(s)).length;
    assert.equal(referenced(), 100, 'hit twice: all referenced');
    clock.now = 10_000;
    gate.tick();
    assert.equal(referenced(), 0, 'the sweep cleared every bit');
    assert.equal(gate.cache.size, 100, 'and expired nothing');
    drv.send(flow(57), ya, xb);
    const first = gate.cache.dumpSlots()[0];
    assert.equal(referenced(), 1);
    assert.ok(gate.cache.referenced(first), 'the flow hit after the sweep is first');
    assert.equal(gate.cache.read(first).srcPort, 1057);
  }));

  it('a sweep of more slots than one slice goes on in later turns, and skips freed and live slots', () => withSweepGate(async (gate, drv, clock) => {
    const flows = 20_000;
    for (let p = 0; p < flows; p++) drv.send(udp4('10.0.2.10', `10.0.1.${11 + (p >> 14)}`, 1024 + (p & 0x3fff), 53), ya, xb);
    assert.equal(gate.cache.size, flows);
    clock.now = 50_000;
    gate.cache.setNow(clock.now); // the clock only (tick() would start a sweep)
    for (let p = 0; p < 10; p++) drv.send(udp4('10.0.2.10', '10.0.1.11', 1024 + p, 53), ya, xb); // refreshed: live at 61 s
    clock.now = 61_000;
    gate.tick();
    assert.ok(gate.cache.size > 10, `one slice per turn: ${gate.cache.size} left after the first`);
    for (let i = 0; i < 10 && gate.cache.size > 10; i++) await new Promise((r) => setImmediate(r));
    assert.equal(gate.cache.size, 10);
    assert.equal(gate.cache.expired, flows - 10);
  }));
});

// --- the flow table underneath: slots, eviction while pending, in-flight answers ---------

/** A response allowing (or denying, ingress) every flow of `req`, stamped with `generation`. */
function answer(req: Int32Array, generation: number, allow: boolean): Int32Array {
  const n = req[1];
  const res = new Int32Array(2 + 9 * n);
  res[0] = generation;
  res[1] = n;
  for (let i = 0; i < n; i++) {
    const o = 2 + 9 * i;
    res[o] = Decision.NoPolicy;
    res[o + 1] = res[o + 2] = res[o + 4] = res[o + 5] = res[o + 7] = res[o + 8] = -1;
    res[o + 3] = allow ? Decision.RuleAllow : Decision.DefaultDeny;
  }
  return res;
}

describe('PolicyEnforcer over the struct-of-arrays flow table', () => {
  it('a flow evicted while its verdict is pending keeps the verdict and its held packets when the answer comes', async () => {
    const ev = new ManualEvaluator();
    const h = harness({ evaluator: ev, cache: { max: 1 } });
    const { gate, drv } = h;
    gate.setSnapshot(onlyFrom('b'));
    assert.equal(drv.send(tcp4('10.0.1.11', '10.0.1.10', 1001, 80, TCP.SYN), xb, xa), Verdict.Held);
    assert.equal(drv.send(tcp4('10.0.1.11', '10.0.1.10', 1002, 80, TCP.SYN), xb, xa), Verdict.Held); // evicts 1001
    assert.equal(gate.cache.evicted, 1);
    assert.equal(drv.send(tcp4('10.0.1.11', '10.0.1.10', 1001, 80, TCP.ACK), xb, xa), Verdict.Held, 'evicted: a miss, held as a pending flow of its own');
    assert.equal(gate.shed, 0);
    gate.endBatch();
    assert.equal(ev.pending.length, 1);
    assert.equal(ev.pending[0].req[1], 3, 'the re-miss is a new pending flow of its own');
    ev.pending[0].resolve(answer(ev.pending[0].req, 1, true));
    await gate.settled();
    assert.equal(h.released.length, 3, 'every held packet released');
    assert.equal(gate.cache.size, 1);
    assert.equal(gate.held.held, 0);
    await gate.close();
  });

  it('a revalidation answer for a slot reused by another flow meanwhile is dropped', async () => {
    const ev = new ManualEvaluator();
    const h = harness({ evaluator: ev });
    const { gate, drv } = h;
    gate.setSnapshot(onlyFrom('b'));
    const kA = tcp4('10.0.1.11', '10.0.1.10', 40000, 80, TCP.SYN);
    drv.send(kA, xb, xa);
    gate.endBatch();
    const miss = ev.pending.shift()!;
    miss.resolve(answer(miss.req, 1, true));
    await gate.settled();
    const slotA = gate.cache.peekExact(drv.parse(kA));
    assert.ok(slotA > 0);
    gate.setSnapshot(onlyFrom('c'));
    await new Promise((r) => setImmediate(r));
    assert.equal(ev.pending.length, 1, 'the revalidation request is out');
    // Flow A leaves; an unselected flow B takes its slot before the answer comes.
    gate.cache.remove(slotA);
    assert.equal(drv.send(udp4('10.0.2.10', '10.0.2.11', 5, 53), ya, undefined), Verdict.Allow);
    const slotB = gate.cache.peekExact(drv.parse(udp4('10.0.2.10', '10.0.2.11', 5, 53)));
    assert.equal(slotB, slotA, 'the slot was reused');
    const reval = ev.pending.shift()!;
    reval.resolve(answer(reval.req, 2, false));
    await gate.revalidated();
    assert.equal(gate.cache.state(slotB), FlowState.Allowed, 'B kept its own verdict');
    assert.equal(gate.revoked, 0);
    assert.equal(drv.send(udp4('10.0.2.10', '10.0.2.11', 5, 53), ya, undefined), Verdict.Allow);
    await gate.close();
  });

  it('reports each evaluation to onEvaluated: new flows (inline: one each; pool: per request) and revalidation batches', async () => {
    for (const mode of ['inline', 'pool'] as const) {
      const seen: [number, number, string][] = [];
      const h = harness({ mode, pool: { threads: 1 }, onEvaluated: (s, n, kind) => seen.push([s, n, kind]) });
      try {
        h.gate.setSnapshot(onlyFrom('b'));
        for (let p = 0; p < 3; p++) h.drv.send(tcp4('10.0.1.11', '10.0.1.10', 1000 + p, 80, TCP.SYN), undefined, xa);
        h.gate.endBatch();
        await h.gate.settled();
        const news = seen.filter((x) => x[2] === 'new');
        assert.deepEqual(news.map((x) => x[1]), mode === 'inline' ? [1, 1, 1] : [3], mode);
        h.gate.setSnapshot(onlyFrom('c'));
        await h.gate.revalidated();
        const reval = seen.filter((x) => x[2] === 'revalidate');
        assert.equal(reval.reduce((a, x) => a + x[1], 0), 3, `${mode}: three flows revalidated`);
        for (const [s] of seen) assert.ok(s >= 0 && s < 5, `${mode}: ${s} s`);
      } finally {
        await h.gate.close();
      }
    }
  });

  it('flowRecords: flows in use first, newest first, deny only on request, at most `limit`', async () => {
    const gate = new PolicyEnforcer({ mode: 'inline', timers: false });
    const drv = new GateDriver(gate);
    try {
      gate.setSnapshot(onlyFrom('b'));
      for (let p = 0; p < 5; p++) drv.send(tcp4('10.0.2.10', '10.0.1.10', 1000 + p, 80, TCP.SYN), undefined, xa); // denied
      for (let p = 0; p < 5; p++) drv.send(tcp4('10.0.1.11', '10.0.1.10', 2000 + p, 80, TCP.SYN), undefined, xa); // allowed
      assert.deepEqual(gate.flowRecords(false, 100).map((r) => r.srcPort), [2004, 2003, 2002, 2001, 2000, 1004, 1003, 1002, 1001, 1000]);
      // A second packet each for 1001 and 2002: in use, so first.
      drv.send(tcp4('10.0.2.10', '10.0.1.10', 1001, 80, TCP.ACK), undefined, xa);
      drv.send(tcp4('10.0.1.11', '10.0.1.10', 2002, 80, TCP.ACK), undefined, xa);
      const all = gate.flowRecords(false, 100);
      assert.deepEqual(all.map((r) => r.srcPort), [2002, 1001, 2004, 2003, 2001, 2000, 1004, 1003, 1002, 1000]);
      const denied = gate.flowRecords(true, 3);
      assert.deepEqual(denied.map((r) => [r.verdict, r.srcPort]), [['deny', 1001], ['deny', 1004], ['deny', 1003]]);
      assert.deepEqual(denied[0].ingress, { decision: 'default-deny' });
      assert.equal(denied[0].dstEndpoint, 'x/a');
    } finally {
      await gate.close();
    }
  });

  it('decide() on cached flows allocates nothing', async () => {
    const gate = new PolicyEnforcer({ mode: 'inline', timers: false });
    const drv = new GateDriver(gate);
    try {
      gate.setSnapshot(onlyFrom('b'));
      const pkts: [Buffer, Endpoint | undefined, Endpoint | undefined][] = [];
      for (let p = 0; p < 256; p++) {
        pkts.push([tcp4('10.0.1.11', '10.0.1.10', 1000 + p, 80, TCP.ACK), undefined, xa]); // evaluated, allowed
        pkts.push([tcp4('10.0.1.10', '10.0.1.11', 80, 1000 + p, TCP.ACK), xa, undefined]); // its replies
        pkts.push([udp4('10.0.2.10', '10.0.2.11', 1000 + p, 53), ya, undefined]); // unselected
        pkts.push([tcp4('10.0.2.10', '10.0.1.10', 1000 + p, 81, TCP.ACK), undefined, xa]); // denied
      }
      for (const [p, f, t] of pkts) drv.send(p, f, t);
      const misses = gate.misses;
      // Packets parsed once into their own buffers; the loop only decides.
      const parsed = pkts.map(([p, f, t]) => {
        drv.parse(p);
        return { key: new FlowKey().copyFrom(drv.key), len: p.length, f, t, flags: drv.parser.tcpFlags };
      });
      const parser = drv.parser;
      let sink = 0;
      const run = (n: number): void => {
        for (let i = 0; i < n; i++) {
          const x = parsed[i & 1023];
          sink ^= gate.decide(x.key, parser, x.len, x.f, x.t);
        }
      };
      const gcs = await gcsDuring(run, 1_000_000);
      assert.equal(gate.misses, misses, 'all hits');
      assert.ok(sink !== 0.5);
      assert.equal(gcs, 0, `${gcs} garbage collections during 1,000,000 decisions`);
    } finally {
      await gate.close();
    }
  });
});
