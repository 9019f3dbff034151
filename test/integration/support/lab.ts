// Drives a real `sluice lab` from tests: up with a unique name, exec in pods and
// hosts, down in `after` even when a test failed.
import { execFile, type ExecFileException } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DaemonStats } from '../../../src/api/stats.js';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/test/integration/support → the package root. */
export const ROOT = join(here, '..', '..', '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');

export interface LabJson {
  name: string;
  backend: string;
  hosts: { name: string; netns: string; underlayIP: string; subnet: string; ipv6Subnet?: string }[];
  pods: { name: string; host: string; netns: string; ip: string; ipv6?: string }[];
}

export interface RunResult { code: number; stdout: string; stderr: string }

/** Runs a command with a hard timeout; never rejects, so tests can assert on failures. */
export function run(cmd: string, args: string[], timeoutMs = 30_000, input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? ((err as ExecFileException).code as number | undefined) ?? 1 : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export function sluice(args: string[], timeoutMs = 60_000): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args], timeoutMs);
}

/** Runs a command inside a network namespace. */
export function inNetns(netns: string, args: string[], timeoutMs = 30_000, input?: string): Promise<RunResult> {
  return run('ip', ['netns', 'exec', netns, ...args], timeoutMs, input);
}

/** Runs a node script inside a network namespace (scripts are plain ESM source). */
export function nodeIn(netns: string, script: string, args: string[] = [], timeoutMs = 30_000): Promise<RunResult> {
  return inNetns(netns, [process.execPath, '--input-type=module', '-e', script, ...args], timeoutMs);
}

export class Lab {
  constructor(readonly json: LabJson) {}

  static async up(name: string, extra: string[] = []): Promise<Lab> {
    await sluice(['lab', 'down', '--name', name]); // a leftover from a crashed run
    const r = await sluice(['lab', 'up', '--name', name, '--json', ...extra], 120_000);
    if (r.code !== 0) {
      await sluice(['lab', 'down', '--name', name]);
      throw new Error(`lab up failed (${r.code}): ${r.stderr}`);
    }
    return new Lab(JSON.parse(r.stdout) as LabJson);
  }

  pod(name: string): LabJson['pods'][number] {
    const p = this.json.pods.find((x) => x.name === name || x.name.endsWith(`/${name}`));
    if (!p) throw new Error(`no pod ${name} in lab ${this.json.name}`);
    return p;
  }

  host(name: string): LabJson['hosts'][number] {
    const h = this.json.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name} in lab ${this.json.name}`);
    return h;
  }

  exec(pod: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
    return inNetns(this.pod(pod).netns, args, timeoutMs);
  }

  /** The daemon's /stats on a host (its API listens on the host namespace's loopback). */
  async stats(host: string): Promise<DaemonStats> {
    const r = await nodeIn(this.host(host).netns,
      "const r = await fetch('http://127.0.0.1:9765/stats'); process.stdout.write(await r.text());");
    if (r.code !== 0) throw new Error(`stats of ${host}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  async down(): Promise<void> {
    const r = await sluice(['lab', 'down', '--name', this.json.name]);
    if (r.code !== 0) throw new Error(`lab down failed: ${r.stderr}`);
  }
}

export async function netnsWithPrefix(prefix: string): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout.split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(prefix));
}

export const canRunNetworkTests = (): string | false =>
  process.getuid?.() !== 0 ? 'needs root (network namespaces and TUN devices)'
    : !existsSync('/dev/net/tun') ? 'needs /dev/net/tun' : false;
