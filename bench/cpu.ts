// CPU accounting from /proc, sampled before and after a measurement: the daemons' own time
// (utime + stime of each PID) and the whole machine's busy time.
import { readFileSync } from 'node:fs';

export interface CpuSample {
  atNs: bigint;
  /** Clock ticks per PID (utime + stime); undefined when the process is gone. */
  procTicks: (number | undefined)[];
  /** /proc/stat "cpu" line: all ticks and idle (idle + iowait) ticks. */
  machineTotal: number;
  machineIdle: number;
}

export function sampleCpu(pids: readonly number[]): CpuSample {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return {
    atNs: process.hrtime.bigint(),
    procTicks: pids.map(procTicks),
    machineTotal: cpu.reduce((a, b) => a + b, 0),
    machineIdle: cpu[3] + (cpu[4] ?? 0),
  };
}

export interface CpuUse {
  /** Per PID, percent of one core over the interval. */
  procPercent: number[];
  /** Whole machine, percent of all cores busy. */
  machineBusyPercent: number;
}

export function cpuBetween(a: CpuSample, b: CpuSample, clkTck: number): CpuUse {
  const seconds = Number(b.atNs - a.atNs) / 1e9;
  const procPercent = a.procTicks.map((t, i) => {
    const u = b.procTicks[i];
    return t === undefined || u === undefined ? NaN : ((u - t) / clkTck / seconds) * 100;
  });
  const total = b.machineTotal - a.machineTotal;
  const busy = total - (b.machineIdle - a.machineIdle);
  return { procPercent, machineBusyPercent: total > 0 ? (busy / total) * 100 : NaN };
}

function procTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
}
