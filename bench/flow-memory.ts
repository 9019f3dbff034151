// Memory of the flow cache when full: RSS and heap of this process with N distinct
// flows cached through the real gate (PolicyEnforcer.decide, inline mode, no
// policy), as a daemon's cache would hold them.
//
//   node --expose-gc dist/bench/flow-memory.js [--flows 1000000] [--impl <dist root>]
//
// --impl loads PolicyEnforcer from another compiled tree (e.g. a worktree of an
// older commit, /tmp/flow-old/dist), so two implementations are measured with the
// same workload; run once per implementation (memory is per process).
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { FlowKey } from '../src/packet/flow-key.js';
import { FlowKeyParser } from '../src/packet/flow-key-parser.js';

const { values } = parseArgs({ options: { flows: { type: 'string', default: '1000000' }, impl: { type: 'string' } } });
const N = Number(values.flows);
const gc = (globalThis as { gc?: () => void }).gc;
type EnforcerModule = typeof import('../src/flow/policy-enforcer.js');
const { PolicyEnforcer } = values.impl === undefined
  ? await import('../src/flow/policy-enforcer.js')
  : await import(pathToFileURL(join(resolve(values.impl), 'src/flow/policy-enforcer.js')).href) as EnforcerModule;

const mib = (n: number) => (n / 1048576).toFixed(1);
function usage(): { rss: number; heap: number } {
  gc?.(); gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

const enforcer = new PolicyEnforcer({ mode: 'inline', timers: false, cache: { max: N } });
const parser = new FlowKeyParser();
const key = new FlowKey();
const before = usage();
const t0 = performance.now();
for (let i = 0; i < N; i++) {
  // Distinct flows: 10.244.1.2 -> 10.244.(2 + i / 65536).x, source port i % 65536.
  key.setV4(6, 0x0af40102, (0x0af40200 + (i >>> 16)) | 0, i & 0xffff, 80);
  enforcer.decide(key, parser, 100, undefined, undefined);
}
const fillMs = performance.now() - t0;
const after = usage();
const s = enforcer.stats();
process.stdout.write([
  `| implementation | flows cached | RSS before | RSS after | heap after | bytes per flow (RSS) | fill, ns per new flow |`,
  `|---|---|---|---|---|---|---|`,
  `| ${values.impl ?? 'this tree'} | ${s.cache.flows.toLocaleString('en-US')} | ${mib(before.rss)} MiB | ${mib(after.rss)} MiB | ${mib(after.heap)} MiB | ` +
    `${((after.rss - before.rss) / s.cache.flows).toFixed(0)} | ${((fillMs * 1e6) / N).toFixed(0)} |`,
  '',
].join('\n'));
await enforcer.close();
