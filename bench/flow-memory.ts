// Memory of the flow cache when full.
//
//   node --expose-gc dist/bench/flow-memory.js [--flows 1000000] [--impl <dist root>]
//     RSS and heap of this process with N distinct flows cached through the real gate
//     (PolicyEnforcer.decide, inline mode, no policy), after a full GC. --impl loads
//     PolicyEnforcer from another compiled tree (e.g. a worktree of an older commit,
//     /tmp/flow-old/dist), so two implementations are measured with the same workload;
//     run once per implementation (memory is per process).
//
//   node dist/bench/flow-memory.js --daemon [--flows 1100000] [--lab-name sfm1]   (root)
//     The real daemons: a `sluice lab` of test/fixtures/live/flood.yaml; pod a (h1) sends
//     N distinct TCP SYNs to pod b (h2) through its TUN (AF_PACKET). a's egress is
//     unselected, so h1 caches every flow at once; b's ingress is policed, so h2 evaluates
//     each in its pool and caches it denied. VmRSS of both daemons before, and 3 s, 13 s
//     and 43 s after the flood (the GC returns the flood's garbage over that time).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { FlowKey } from '../src/packet/flow-key.js';
import { FlowKeyParser } from '../src/packet/flow-key-parser.js';

const { values } = parseArgs({
  options: {
    flows: { type: 'string' }, impl: { type: 'string' }, daemon: { type: 'boolean', default: false },
    'lab-name': { type: 'string', default: 'sfm1' },
  },
});
const mib = (n: number) => (n / 1048576).toFixed(1);

async function inProcess(n: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  type EnforcerModule = typeof import('../src/flow/policy-enforcer.js');
  const { PolicyEnforcer } = values.impl === undefined
    ? await import('../src/flow/policy-enforcer.js')
    : await import(pathToFileURL(join(resolve(values.impl), 'src/flow/policy-enforcer.js')).href) as EnforcerModule;
  const usage = (): { rss: number; heap: number } => {
    gc?.(); gc?.();
    const m = process.memoryUsage();
    return { rss: m.rss, heap: m.heapUsed };
  };
  const enforcer = new PolicyEnforcer({ mode: 'inline', timers: false, cache: { max: n } });
  const parser = new FlowKeyParser();
  const key = new FlowKey();
  const before = usage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
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
      `${((after.rss - before.rss) / s.cache.flows).toFixed(0)} | ${((fillMs * 1e6) / n).toFixed(0)} |`,
    '',
  ].join('\n'));
  await enforcer.close();
}


async function daemons(n: number): Promise<void> {
  const { inNetns, Lab, ROOT, sluice } = await import('../test/integration/support/lab.js');
  const { synFloodScript } = await import('../test/integration/support/traffic.js');
  const rss = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  const name = values['lab-name']!;
  const lab = await Lab.up(name, ['-f', join(ROOT, 'test', 'fixtures', 'live', 'flood.yaml')]);
  try {
    const status = JSON.parse((await sluice(['lab', 'status', '--name', name, '--json'])).stdout) as { daemons: { host: string; pid: number }[] };
    const pid = (h: string): number => status.daemons.find((d) => d.host === h)!.pid;
    const a = lab.pod('demo/a'), b = lab.pod('demo/b');
    await lab.exec('demo/a', ['ping', '-c', '2', '-i', '0.2', b.ip]);
    await new Promise((r) => setTimeout(r, 2000));
    const hosts = ['h1', 'h2'];
    const before = hosts.map((h) => rss(pid(h)));
    const t0 = Date.now();
    const flood = await inNetns(a.netns, ['python3', '-c', synFloodScript(a.ip, b.ip, n, 500, 0.001)], 600_000);
    if (flood.code !== 0) throw new Error(`flood: ${flood.stderr}`);
    const floodS = (Date.now() - t0) / 1000;
    const after: number[][] = hosts.map(() => []);
    const stats: { flows: number; evicted: number; shed: number }[] = [];
    for (const wait of [3, 10, 30]) {
      await new Promise((r) => setTimeout(r, wait * 1000));
      hosts.forEach((h, i) => after[i].push(rss(pid(h))));
      // The cache as the first sample sees it (its first flows expire 60 s after the flood began).
      for (const h of stats.length === 0 ? hosts : []) {
        const p = (await lab.stats(h)).policy!;
        stats.push({ flows: p.cache.flows, evicted: p.cache.evicted, shed: p.shed });
      }
    }
    // Where the last sample's memory is: anonymous (heap, columns, malloc) vs file pages (the node
    // binary and libraries), and what V8 reports of it.
    const parts: string[] = [];
    for (const h of hosts) {
      const st = readFileSync(`/proc/${pid(h)}/status`, 'utf8');
      const kib = (f: string): string => mib(Number(new RegExp(`${f}:\\s+(\\d+)`).exec(st)?.[1] ?? NaN) * 1024);
      const m = (await lab.stats(h)).memory;
      parts.push(`${h}: RssAnon ${kib('RssAnon')} MiB, RssFile ${kib('RssFile')} MiB; V8 heap used ${mib(m.heapUsed)} MiB, external ${mib(m.external)} MiB`);
    }
    console.log(`${flood.stdout.trim()} SYNs in ${floodS.toFixed(1)} s\n`);
    console.log('| host | RSS before | flows cached | evicted | shed | RSS 3 s / 13 s / 43 s after the flood |');
    console.log('|---|---|---|---|---|---|');
    for (let i = 0; i < hosts.length; i++) {
      const p = stats[i];
      console.log(`| ${hosts[i]} | ${before[i].toFixed(1)} MiB | ${p.flows.toLocaleString('en-US')} | ${p.evicted.toLocaleString('en-US')} | ` +
        `${p.shed.toLocaleString('en-US')} | ${after[i].map((x) => x.toFixed(1)).join(' / ')} MiB |`);
    }
    console.log(`\nAt 43 s: ${parts.join('; ')}`);
  } finally {
    await lab.down();
  }
}

if (values.daemon) await daemons(Number(values.flows ?? 1_100_000));
else await inProcess(Number(values.flows ?? 1_000_000));
