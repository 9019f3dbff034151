// The data path's switches from the environment (offloads, fast path, real-time priority), the
// daemon's --busy-poll check and V8 flags, and `sluice bench`'s option checks: defaults, every accepted
// spelling, and the exact error for bad input.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeOffloads, offloadsFromEnv } from '../../src/dataplane/offloads.js';
import { fastPathFromEnv } from '../../src/dataplane/fast-path.js';
import { realtimeFromEnv } from '../../src/dataplane/scheduling.js';
import { checkOptions } from '../../bench/sluice-bench.js';
import { DAEMON_NODE_FLAGS, missingNodeFlags } from '../../src/daemon/node-flags.js';

test('offloads: all on by default; SLUICE_OFFLOADS and one switch each', () => {
  assert.deepEqual(offloadsFromEnv({}), { tun: true, gso: true, gro: true });
  assert.deepEqual(offloadsFromEnv({ SLUICE_OFFLOADS: 'off' }), { tun: false, gso: false, gro: false });
  assert.deepEqual(offloadsFromEnv({ SLUICE_OFFLOADS: '0', SLUICE_OFFLOAD_GRO: 'on' }), { tun: false, gso: false, gro: true });
  assert.deepEqual(offloadsFromEnv({ SLUICE_OFFLOAD_TUN: 'false', SLUICE_OFFLOAD_GSO: ' OFF ' }), { tun: false, gso: false, gro: true });
  assert.equal(describeOffloads({ tun: true, gso: false, gro: true }), 'tun,gro');
  assert.equal(describeOffloads({ tun: false, gso: false, gro: false }), 'none');
  assert.throws(() => offloadsFromEnv({ SLUICE_OFFLOAD_GSO: 'maybe' }),
    { name: 'TypeError', message: 'SLUICE_OFFLOAD_GSO: expected on|off (or 1|0), got "maybe"' });
});

test('fast path: on with a 5 s TTL by default; off; TTL bounds', () => {
  assert.deepEqual(fastPathFromEnv({}), { ttlMs: 5000 });
  assert.equal(fastPathFromEnv({ SLUICE_FASTPATH: 'off' }), null);
  assert.deepEqual(fastPathFromEnv({ SLUICE_FASTPATH: 'on', SLUICE_FASTPATH_TTL_MS: '250' }), { ttlMs: 250 });
  assert.throws(() => fastPathFromEnv({ SLUICE_FASTPATH: 'yes' }),
    { name: 'TypeError', message: 'SLUICE_FASTPATH: expected on|off, got "yes"' });
  for (const bad of ['0', '1.5', '600001', 'soon']) {
    assert.throws(() => fastPathFromEnv({ SLUICE_FASTPATH_TTL_MS: bad }),
      { name: 'TypeError', message: `SLUICE_FASTPATH_TTL_MS: expected an integer 1..600000, got ${JSON.stringify(bad)}` });
  }
});

test('real-time priority: 0 (normal) by default, 1..99 accepted', () => {
  assert.equal(realtimeFromEnv({}), 0);
  assert.equal(realtimeFromEnv({ SLUICE_REALTIME: '' }), 0);
  assert.equal(realtimeFromEnv({ SLUICE_REALTIME: '10' }), 10);
  assert.throws(() => realtimeFromEnv({ SLUICE_REALTIME: '100' }),
    { name: 'TypeError', message: 'SLUICE_REALTIME: expected a SCHED_FIFO priority 0..99, got "100"' });
});

test('sluice bench options: numbers, systems, tests, real-time priority', () => {
  assert.deepEqual(checkOptions({ seconds: '5', repeat: '3', systems: 'kernel-vxlan, sluice-vxlan,kernel-vxlan' }),
    { seconds: 5, repeat: 3, systems: ['kernel-vxlan', 'sluice-vxlan'], realtime: 0, tests: ['tcp1', 'tcp4', 'udp', 'ping'] });
  assert.deepEqual(checkOptions({ seconds: '5', repeat: '3', systems: 'tinc', tests: 'ping, tcp1,ping' }).tests, ['ping', 'tcp1']);
  assert.throws(() => checkOptions({ seconds: '5', repeat: '3', systems: 'tinc', tests: 'ping,rtt' }),
    { name: 'TypeError', message: '--tests: unknown test "rtt"; expected some of tcp1, tcp4, udp, ping' });
  assert.equal(checkOptions({ seconds: '1', repeat: '1', systems: 'tinc', realtime: '10' }).realtime, 10);
  assert.throws(() => checkOptions({ seconds: '0', repeat: '3', systems: 'tinc' }),
    { name: 'TypeError', message: '--seconds: expected an integer 1..600, got "0"' });
  assert.throws(() => checkOptions({ seconds: '5', repeat: '3', systems: 'wireguard' }),
    { name: 'TypeError', message: /^--systems: unknown system "wireguard"; expected some of sluice-vxlan, sluice-udp, kernel-vxlan/ });
  assert.throws(() => checkOptions({ seconds: '5', repeat: '3', systems: ' , ' }),
    { name: 'TypeError', message: '--systems: name at least one system' });
});

test('sluice daemon --busy-poll: needs native datapath threads; bad values are named', () => {
  const cli = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
  const daemon = (...args: string[]) => spawnSync(process.execPath, [cli, 'daemon', '--host', 'h1', '--api', 'off', ...args],
    { encoding: 'utf8', timeout: 20_000, env: { ...process.env, SLUICE_REALTIME: '' } });
  const alone = daemon('--busy-poll', '300');
  assert.notEqual(alone.status, 0);
  assert.match(alone.stderr, /--busy-poll needs --datapath-threads 2 or more/);
  const bad = daemon('--datapath-threads', '2', '--busy-poll', 'soon');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /option '--busy-poll <us>' argument 'soon' is invalid\. expected an integer 0\.\.1000000/);
  // A SCHED_FIFO thread that spins would starve its CPU: refused, from the flag or the environment.
  const rt = daemon('--datapath-threads', '2', '--busy-poll', '300', '--realtime', '10');
  assert.notEqual(rt.status, 0);
  assert.match(rt.stderr, /--busy-poll cannot be combined with --realtime \(or SLUICE_REALTIME\)/);
  const rtEnv = spawnSync(process.execPath, [cli, 'daemon', '--host', 'h1', '--api', 'off', '--datapath-threads', '2', '--busy-poll', '300'],
    { encoding: 'utf8', timeout: 20_000, env: { ...process.env, SLUICE_REALTIME: '10' } });
  assert.match(rtEnv.stderr, /--busy-poll cannot be combined with --realtime/);
});

test('the daemon\'s V8 flags: missing ones are named, given ones (command line or NODE_OPTIONS) are not', () => {
  const saved = process.env.NODE_OPTIONS;
  try {
    delete process.env.NODE_OPTIONS;
    assert.deepEqual(missingNodeFlags([]), [...DAEMON_NODE_FLAGS]);
    assert.deepEqual(missingNodeFlags(['--trace-gc', ...DAEMON_NODE_FLAGS]), []);
    process.env.NODE_OPTIONS = `--enable-source-maps ${DAEMON_NODE_FLAGS.join(' ')}`;
    assert.deepEqual(missingNodeFlags([]), []);
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
  }
});
