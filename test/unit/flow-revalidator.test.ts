import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Verdict } from '../../src/dataplane/policy-gate.js';
import { FlowState } from '../../src/flow/flow-entry.js';
import { PolicyEnforcer } from '../../src/flow/policy-enforcer.js';
import { Decision } from '../../src/workers/batch-format.js';
import { allowIngressFrom, basicSnapshot, endpoint, GateDriver } from './flow-fixtures.js';
import { TCP, tcp4, udp4 } from './packet-fixtures.js';

const xa = endpoint('x', 'a', '10.0.1.10');
const yb = endpoint('y', 'b', '10.0.2.11');
const onlyFrom = (podLabel: string) => basicSnapshot([allowIngressFrom('x', 'pa', 'a', podLabel, 80)]);

describe('Revalidator', () => {
  it('settles flows of endpoints nothing selects any more in place, without evaluating them', async () => {
    const gate = new PolicyEnforcer({ mode: 'inline', timers: false });
    const drv = new GateDriver(gate);
    try {
      gate.setSnapshot(onlyFrom('b'));
      for (let p = 0; p < 30_000; p++) drv.send(udp4('10.0.2.10', '10.0.1.10', 1000 + (p % 60000), 53 + Math.floor(p / 60000)), undefined, xa);
      assert.equal(gate.evaluated, 30_000);
      assert.equal(gate.stats().cache.flows, 30_000);
      const evaluatedBefore = gate.revalidator.flows;
      const gen = gate.setSnapshot(basicSnapshot([])); // no policy at all now
      await gate.revalidated();
      assert.equal(gate.revalidator.flows, evaluatedBefore, 'no evaluation needed');
      let open = 0;
      for (const e of gate.flows()) if (e.state === FlowState.Allowed && e.generation === gen && e.ingress === Decision.NoPolicy) open++;
      assert.equal(open, 30_000);
      assert.equal(gate.reinstated, 30_000);
      assert.equal(drv.send(udp4('10.0.2.10', '10.0.1.10', 1000, 53), undefined, xa), Verdict.Allow);
    } finally {
      await gate.close();
    }
  });

  it('a verdict asked under a replaced generation does not stand: rechecked under the new one', async () => {
    const released: Buffer[] = [];
    const gate = new PolicyEnforcer({
      mode: 'pool', pool: { threads: 1 }, timers: false,
      onRelease: (b, n) => { for (let i = 0; i < n; i++) released.push(Buffer.from(b.buf.subarray(b.offsets[i], b.offsets[i] + b.lengths[i]))); },
    });
    const drv = new GateDriver(gate);
    try {
      gate.setSnapshot(onlyFrom('b'));
      const syn = tcp4('10.0.1.11', '10.0.1.10', 40000, 80, TCP.SYN);
      assert.equal(drv.send(syn, undefined, xa), Verdict.Held);
      gate.endBatch(); // the request carries generation 1
      const gen2 = gate.setSnapshot(onlyFrom('c'));
      await gate.settled();
      await gate.revalidated();
      const e = gate.flow(drv.parse(syn))!;
      assert.equal(e.generation, gen2);
      // The worker may see generation 2 before it takes the request (the snapshot broadcast and the
      // task travel on different channels): then the packet is denied at once. Otherwise it is
      // released on the generation-1 verdict and the entry revoked by revalidation.
      if (released.length === 1) assert.equal(e.state, FlowState.Revoked);
      else assert.deepEqual([released.length, e.state], [0, FlowState.Denied]);
      assert.equal(drv.send(syn, undefined, xa), Verdict.Deny);
    } finally {
      await gate.close();
    }
  });

  it('a change during a pass restarts it for the newest generation', async () => {
    const gate = new PolicyEnforcer({ mode: 'inline', timers: false, revalidator: { inlineChunk: 64, sliceMs: 0.5 } });
    const drv = new GateDriver(gate);
    try {
      gate.setSnapshot(onlyFrom('b'));
      for (let p = 0; p < 5000; p++) drv.send(tcp4('10.0.1.11', '10.0.1.10', 1000 + p, 80, TCP.SYN), undefined, xa);
      gate.setSnapshot(onlyFrom('c'));
      await new Promise((r) => setImmediate(r)); // part of the pass
      const last = gate.setSnapshot(onlyFrom('b'));
      await gate.revalidated();
      let n = 0;
      for (const e of gate.flows()) {
        assert.equal(e.generation, last);
        if (e.state === FlowState.Allowed) n++;
      }
      assert.equal(n, 5000);
      // Unrelated endpoints' flows stay as they were.
      assert.equal(drv.send(udp4('10.0.2.11', '10.0.2.10', 5, 53), yb, undefined), Verdict.Allow);
    } finally {
      await gate.close();
    }
  });

  it('rejects bad options with the option named', () => {
    assert.throws(() => new PolicyEnforcer({ mode: 'inline', timers: false, revalidator: { chunk: 0 } }),
      /Revalidator: chunk must be a positive integer, got 0/);
  });
});
