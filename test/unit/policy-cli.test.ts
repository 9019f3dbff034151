// `policy check` and `policy matrix`, run through a local commander program with
// captured output (the main CLI registers the same commands).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Command, CommanderError } from 'commander';
import { registerPolicyCommands } from '../../src/api/policy-cli.js';
import { compile } from '../../src/policy/compiler.js';
import { loadManifests } from '../../src/policy/manifests.js';
import { reachability, parseProbes } from '../../src/policy/matrix.js';
import { E2E_MODEL, FIXTURES, PODS } from '../fixtures/policy/harness.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

async function run(...args: string[]): Promise<Run> {
  let out = '', err = '';
  const program = new Command('sluice')
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => { out += s; }, writeErr: (s) => { err += s; } });
  registerPolicyCommands(program);
  try {
    await program.parseAsync(['node', 'sluice', ...args]);
    return { code: 0, out, err };
  } catch (e) {
    assert.ok(e instanceof CommanderError, `unexpected ${String(e)}`);
    return { code: e.exitCode, out, err };
  }
}

const POLICIES = `${FIXTURES}e2e-policies.yaml`;
const tmp = mkdtempSync(join(tmpdir(), 'sluice-policy-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('policy check', () => {
  it('prints the verdict with the deciding policy and rule per direction', async () => {
    const r = await run('policy', 'check', '-f', E2E_MODEL, POLICIES, '--from', 'y/a', '--to', 'x/a', '--protocol', 'TCP', '--port', '80');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, '');
    assert.equal(r.out, [
      'y/a (10.0.2.10) -> x/a (10.0.1.10) TCP/80: ALLOWED',
      '  egress  at y/a: allowed (no policy selects y/a for egress)',
      '  ingress at x/a: allowed by KubernetesNetworkPolicy/x/a-from-y ingress rule 0 (Allow)',
      '',
    ].join('\n'));
  });

  it('explains a default deny and a Calico Deny', async () => {
    const deny = await run('policy', 'check', '-f', E2E_MODEL, POLICIES, '--from', 'y/a', '--to', 'x/a', '--port', '81');
    assert.equal(deny.out.split('\n')[0], 'y/a (10.0.2.10) -> x/a (10.0.1.10) TCP/81: DENIED');
    assert.equal(deny.out.split('\n')[2],
      '  ingress at x/a: denied (default deny: selected by GlobalNetworkPolicy/block-yc, KubernetesNetworkPolicy/x/a-from-y, KubernetesNetworkPolicy/x/deny-all; no rule allowed the flow)');
    const calico = await run('policy', 'check', '-f', E2E_MODEL, POLICIES, '--from', 'y/c', '--to', 'x/a', '--port', '80');
    assert.equal(calico.out.split('\n')[2], '  ingress at x/a: denied by GlobalNetworkPolicy/block-yc ingress rule 0 (Deny)');
  });

  it('accepts IP addresses on either side', async () => {
    const r = await run('policy', 'check', '-f', E2E_MODEL, POLICIES, '--from', '192.0.2.7', '--to', '10.0.2.11', '--protocol', 'udp', '--port', '53');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, [
      '192.0.2.7 (192.0.2.7) -> y/b (10.0.2.11) UDP/53: ALLOWED',
      '  egress  at 192.0.2.7: not checked (192.0.2.7 is not a known pod)',
      '  ingress at y/b: allowed (no policy selects y/b for ingress)',
      '',
    ].join('\n'));
  });

  it('--json prints the verdict as data', async () => {
    const r = await run('policy', 'check', '-f', E2E_MODEL, POLICIES, '--from', 'z/a', '--to', 'x/b', '--port', '80', '--json');
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out), {
      from: 'z/a', to: 'x/b', fromIP: '10.0.3.10', toIP: '10.0.1.11', protocol: 'TCP', port: 80, allowed: false,
      egress: { allowed: true, endpoint: 'z/a', reason: 'no-policy' },
      ingress: { allowed: false, endpoint: 'x/b', reason: 'default-deny' },
      logs: [],
    });
  });

  it('ICMP with type and code', async () => {
    const file = join(tmp, 'icmp.yaml');
    writeFileSync(file, `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: ping, namespace: x}
spec:
  ingress:
    - action: Log
    - action: Allow
      protocol: ICMP
      icmp: {type: 8}
`);
    const ok = await run('policy', 'check', '-f', E2E_MODEL, file, '--from', 'y/a', '--to', 'x/c', '--protocol', 'ICMP', '--icmp-type', '8', '--icmp-code', '0');
    assert.equal(ok.out, [
      'y/a (10.0.2.10) -> x/c (10.0.1.12) ICMP: ALLOWED',
      '  egress  at y/a: allowed (no policy selects y/a for egress)',
      '  ingress at x/c: allowed by CalicoNetworkPolicy/x/ping ingress rule 1 (Allow)',
      '  log: CalicoNetworkPolicy/x/ping ingress rule 0 at x/c',
      '',
    ].join('\n'));
    const no = await run('policy', 'check', '-f', E2E_MODEL, file, '--from', 'y/a', '--to', 'x/c', '--protocol', '1', '--icmp-type', '0');
    assert.match(no.out, /ICMP: DENIED/);
  });

  const usage: [string, string[], RegExp][] = [
    ['a missing option', ['--from', 'x/a', '--port', '80'], /^error: required option '--to <endpoint>' not specified/],
    ['an unknown option', ['--from', 'x/a', '--to', 'x/b', '--port', '80', '--bogus'], /^error: unknown option '--bogus'/],
    ['a missing port', ['--from', 'x/a', '--to', 'x/b'], /^error: --port is required for TCP\n$/],
    ['a bad port', ['--from', 'x/a', '--to', 'x/b', '--port', '80x'], /^error: --port: expected an integer from 0 to 65535, got "80x"\n$/],
    ['an unknown pod', ['--from', 'x/q', '--to', 'x/b', '--port', '80'], /^error: --from: no pod x\/q in the manifests\n$/],
    ['a bad endpoint', ['--from', 'x/a', '--to', 'nonsense', '--port', '80'], /^error: --to: expected NS\/POD or an IP address, got "nonsense"\n$/],
    ['a bad protocol', ['--from', 'x/a', '--to', 'x/b', '--protocol', 'HTTP'], /^error: --protocol: expected TCP, UDP, SCTP, ICMP, ICMPv6, UDPLite or 1-255, got "HTTP"\n$/],
  ];
  for (const [name, args, message] of usage) {
    it(`exits 2 on ${name}`, async () => {
      const r = await run('policy', 'check', '-f', E2E_MODEL, ...args);
      assert.equal(r.code, 2);
      assert.equal(r.out, '');
      assert.match(r.err, message);
    });
  }

  it('exits 2 naming file, document and field for invalid manifests', async () => {
    const file = join(tmp, 'bad.yaml');
    writeFileSync(file, `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ok, namespace: x}
spec: {podSelector: {}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad, namespace: x}
spec:
  podSelector: {}
  ingress:
    - ports: [{port: 80}, {port: [81]}]
`);
    const r = await run('policy', 'check', '-f', E2E_MODEL, file, '--from', 'x/a', '--to', 'x/b', '--port', '80');
    assert.equal(r.code, 2);
    assert.equal(r.out, '');
    assert.equal(r.err, `error: invalid manifests (nothing was loaded):\n  ${file} doc 2: spec.ingress[0].ports[1].port: expected number or string\n`);
  });
});

describe('policy matrix', () => {
  it('prints one truth table per probe', async () => {
    const r = await run('policy', 'matrix', '-f', E2E_MODEL, POLICIES, '--ports', 'TCP/80,UDP/80');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `TCP/80  (rows: from, columns: to; '.' allowed, 'X' blocked)
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a .   X   X   .   .   .   .   .   .
x/b X   .   X   .   .   .   .   .   .
x/c X   X   .   .   .   .   .   .   .
y/a .   X   X   .   .   .   .   .   .
y/b .   X   X   .   .   .   .   .   .
y/c X   X   X   .   .   .   .   .   .
z/a X   X   X   .   .   .   .   .   .
z/b X   X   X   .   .   .   .   .   .
z/c X   X   X   .   .   .   .   .   .

UDP/80  (rows: from, columns: to; '.' allowed, 'X' blocked)
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a .   X   X   .   .   .   .   .   .
x/b X   .   X   .   .   .   .   .   .
x/c X   X   .   .   .   .   .   .   .
y/a X   X   X   .   .   .   .   .   .
y/b X   X   X   .   .   .   .   .   .
y/c X   X   X   .   .   .   .   .   .
z/a X   X   X   .   .   .   .   .   .
z/b X   X   X   .   .   .   .   .   .
z/c X   X   X   .   .   .   .   .   .
`);
  });

  it('--json prints every ordered pair per port, from the same evaluator', async () => {
    const r = await run('policy', 'matrix', '-f', E2E_MODEL, POLICIES, '--ports', 'TCP/80,TCP/81,UDP/80', '--json');
    assert.equal(r.code, 0, r.err);
    const cells = JSON.parse(r.out) as { from: string; to: string; protocol: string; port: number; allowed: boolean }[];
    assert.equal(cells.length, 3 * PODS.length * PODS.length);
    assert.deepEqual(cells[0], { from: 'x/a', to: 'x/a', protocol: 'TCP', port: 80, allowed: true });
    assert.deepEqual(cells.find((c) => c.from === 'y/b' && c.to === 'x/a' && c.port === 81), { from: 'y/b', to: 'x/a', protocol: 'TCP', port: 81, allowed: false });
    const direct = reachability(compile(loadManifests([E2E_MODEL, POLICIES])), parseProbes('TCP/80,TCP/81,UDP/80'));
    assert.deepEqual(cells, direct);
  });

  it('reads directories and gives IP-less pods analysis addresses (with a note on stderr)', async () => {
    const file = join(tmp, 'no-ips.yaml');
    writeFileSync(file, `apiVersion: v1
kind: Pod
metadata: {name: a, namespace: lab, labels: {role: a}}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: lab}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-isolated, namespace: lab}
spec: {podSelector: {matchLabels: {role: a}}}
`);
    const r = await run('policy', 'matrix', '-f', file, '--ports', 'TCP/80', '--json');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, 'note: 2 pod(s) have no status.podIP; using addresses from 198.18.0.0/15 for this analysis: lab/a=198.18.0.1 lab/b=198.18.0.2\n');
    assert.deepEqual(JSON.parse(r.out).map((c: { allowed: boolean }) => c.allowed), [true, true, false, true]);

    const demo = await run('policy', 'matrix', '-f', `${FIXTURES}demo`, '--ports', 'TCP/8080,TCP/5432');
    assert.equal(demo.code, 0, demo.err);
    assert.equal(demo.out, `TCP/8080  (rows: from, columns: to; '.' allowed, 'X' blocked)
            edge/client shop/db     shop/web
edge/client .           X           .
shop/db     .           .           X
shop/web    .           X           .

TCP/5432  (rows: from, columns: to; '.' allowed, 'X' blocked)
            edge/client shop/db     shop/web
edge/client .           X           X
shop/db     .           .           X
shop/web    .           .           .
`);
  });

  it('exits 2 on a bad --ports list', async () => {
    const r = await run('policy', 'matrix', '-f', E2E_MODEL, '--ports', 'TCP/80,ICMP/0');
    assert.equal(r.code, 2);
    assert.equal(r.err, 'error: --ports: expected PROTOCOL/PORT with protocol TCP, UDP, SCTP or UDPLite and port 1-65535 (e.g. TCP/80), got "ICMP/0"\n');
  });

  it('exits 2 when a path does not exist', async () => {
    const r = await run('policy', 'matrix', '-f', join(tmp, 'nope'));
    assert.equal(r.code, 2);
    assert.equal(r.err, `error: invalid manifests (nothing was loaded):\n  ${join(tmp, 'nope')}: cannot read (ENOENT): no such file or directory\n`);
  });
});
