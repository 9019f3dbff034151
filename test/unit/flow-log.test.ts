import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Verdict } from '../../src/dataplane/policy-gate.js';
import { FlowEntry, FlowState } from '../../src/flow/flow-entry.js';
import { FlowLog } from '../../src/flow/flow-log.js';
import { PolicyEnforcer } from '../../src/flow/policy-enforcer.js';
import { TokenBucket } from '../../src/flow/token-bucket.js';
import { IpProto } from '../../src/packet/proto.js';
import { Decision, Side } from '../../src/workers/batch-format.js';
import { allowIngressFrom, basicSnapshot, calicoDenyEgress, endpoint, GateDriver, ip4 } from './flow-fixtures.js';
import { TCP, tcp4 } from './packet-fixtures.js';

function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info', base: undefined, timestamp: false }, { write: (s: string) => { lines.push(JSON.parse(s)); } });
  return { logger, lines };
}

const xa = endpoint('x', 'a', '10.0.1.10');
const xb = endpoint('x', 'b', '10.0.1.11');

function deniedEntry(port: number): FlowEntry {
  const e = new FlowEntry().setV4(IpProto.TCP, ip4('10.0.2.10'), ip4('10.0.1.10'), port, 80) as FlowEntry;
  e.to = xa;
  e.state = FlowState.Denied;
  e.ingress = Decision.DefaultDeny;
  e.generation = 3;
  return e;
}

describe('TokenBucket', () => {
  it('allows a burst, then `rate` per second', () => {
    const b = new TokenBucket(10, 5, 0);
    let n = 0;
    for (let i = 0; i < 20; i++) if (b.take(0)) n++;
    assert.equal(n, 5);
    assert.equal(b.take(50), false);
    assert.equal(b.take(100), true);
    assert.equal(b.available(10_000), 5, 'capped at burst');
    assert.throws(() => new TokenBucket(0, 5, 0), /TokenBucket: rate must be > 0 per second, got 0/);
  });
});

describe('FlowLog', () => {
  it('writes a structured record per denied flow: endpoints, 5-tuple, verdict, policy, rule', () => {
    const { logger, lines } = capture();
    const log = new FlowLog(logger);
    const e = deniedEntry(40000);
    e.fwdPackets = 2;
    e.fwdBytes = 120;
    log.decided(e, 'new', FlowState.Pending, 0, undefined, -1, basicSnapshot(), 0);
    assert.equal(lines.length, 1);
    assert.deepEqual(lines[0], {
      level: 40, msg: 'flow denied', verdict: 'deny', cause: 'new', protocol: 'tcp',
      src: '10.0.2.10', dst: '10.0.1.10', srcPort: 40000, dstPort: 80,
      srcEndpoint: 'y/a', dstEndpoint: 'x/a',
      ingress: { decision: 'default-deny' }, generation: 3, packets: 2, bytes: 120,
    });
  });

  it('logs allowed flows only for a Log rule or with logAllowed', () => {
    const { logger, lines } = capture();
    const e = new FlowEntry().setV4(IpProto.TCP, ip4('10.0.1.11'), ip4('10.0.1.10'), 1, 80) as FlowEntry;
    e.state = FlowState.Allowed;
    e.from = xb;
    e.to = xa;
    e.egress = Decision.RuleAllow;
    e.egressPolicy = 'CalicoNetworkPolicy/x/p';
    e.egressRule = 2;
    new FlowLog(logger).decided(e, 'new', FlowState.Pending, 0, undefined, -1, undefined, 0);
    assert.equal(lines.length, 0);
    new FlowLog(logger).decided(e, 'new', FlowState.Pending, Side.Egress, 'CalicoNetworkPolicy/x/p', 0, undefined, 0);
    assert.equal(lines.length, 1);
    assert.equal(lines[0].msg, 'flow logged');
    assert.deepEqual(lines[0].log, { direction: 'egress', policy: 'CalicoNetworkPolicy/x/p', rule: 0 });
    assert.deepEqual(lines[0].egress, { decision: 'rule-allow', policy: 'CalicoNetworkPolicy/x/p', rule: 2 });
    new FlowLog(logger, { logAllowed: true }).decided(e, 'new', FlowState.Pending, 0, undefined, -1, undefined, 0);
    assert.equal(lines.length, 2);
    assert.equal(lines[1].msg, 'flow allowed');
    // A policy change is logged when it flips the verdict.
    const log = new FlowLog(logger);
    log.decided(e, 'policy-change', FlowState.Allowed, 0, undefined, -1, undefined, 0);
    assert.equal(lines.length, 2);
    e.state = FlowState.Revoked;
    log.decided(e, 'policy-change', FlowState.Allowed, 0, undefined, -1, undefined, 0);
    assert.equal(lines.length, 3);
    assert.equal(lines[2].verdict, 'deny');
    assert.equal(lines[2].cause, 'policy-change');
  });

  it('rate-limits a flood and reports what it suppressed, at most once a second', () => {
    const { logger, lines } = capture();
    const log = new FlowLog(logger, { rate: 10, burst: 5 }, 0);
    for (let i = 0; i < 1000; i++) log.decided(deniedEntry(i), 'new', FlowState.Pending, 0, undefined, -1, undefined, 0);
    assert.equal(lines.length, 5);
    assert.equal(log.suppressed, 995);
    log.tick(0);
    assert.equal(lines.length, 6);
    assert.deepEqual(lines[5], { level: 40, msg: 'flow log: records suppressed by the rate limit', suppressed: 995, suppressedTotal: 995 });
    // One second later: 10 more tokens (capped at the burst of 5).
    for (let i = 0; i < 100; i++) log.decided(deniedEntry(i), 'new', FlowState.Pending, 0, undefined, -1, undefined, 1000);
    log.tick(500);
    assert.equal(lines.length, 11, 'no second summary within a second');
    log.tick(1000);
    assert.equal(lines.length, 12);
    assert.equal(lines[11].suppressed, 95);
    assert.equal(lines[11].suppressedTotal, 1090);
    log.tick(5000);
    assert.equal(lines.length, 12, 'nothing new suppressed: no summary');
    assert.equal(log.logged, 10);
  });
});

describe('flow logs from the enforcer', () => {
  it('logs denied new flows and Log-rule hits with the deciding policy and rule', async () => {
    const { logger, lines } = capture();
    const yb = endpoint('y', 'b', '10.0.2.11');
    const gate = new PolicyEnforcer({ mode: 'inline', logger, timers: false });
    const drv = new GateDriver(gate);
    try {
      gate.setSnapshot(basicSnapshot([allowIngressFrom('x', 'pa', 'a', 'b', 80), calicoDenyEgress('y', 'deny-b', 'b', 81)]));
      assert.equal(drv.send(tcp4('10.0.2.11', '10.0.1.10', 5000, 81, TCP.SYN), yb, undefined), Verdict.Deny);
      assert.equal(drv.send(tcp4('10.0.2.11', '10.0.1.10', 5000, 81, TCP.SYN), yb, undefined), Verdict.Deny);
      assert.equal(drv.send(tcp4('10.0.1.11', '10.0.1.10', 5001, 80, TCP.SYN), xb, xa), Verdict.Allow);
      assert.equal(lines.length, 1, 'one record per flow, not per packet; plain allowed flows are quiet');
      assert.deepEqual(lines[0], {
        level: 40, msg: 'flow denied', verdict: 'deny', cause: 'new', protocol: 'tcp',
        src: '10.0.2.11', dst: '10.0.1.10', srcPort: 5000, dstPort: 81, srcEndpoint: 'y/b', dstEndpoint: 'x/a',
        egress: { decision: 'rule-deny', policy: 'CalicoNetworkPolicy/y/deny-b', rule: 1 },
        log: { direction: 'egress', policy: 'CalicoNetworkPolicy/y/deny-b', rule: 0 },
        generation: 1, packets: 1, bytes: 40,
      });
    } finally {
      await gate.close();
    }
  });
});
