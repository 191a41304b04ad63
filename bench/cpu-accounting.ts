/**
 * Where a machine's cores went during a benchmark window, by component, from /proc (Linux only).
 * Each process is charged to the nearest labelled ancestor (a role process started by the benchmark,
 * the private engine), or else by its name: the servers of the stack (Kafka, Connect, the registry,
 * PostgreSQL with its backends, Temporal) and the benchmark itself.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

/** CPU seconds per component at one instant, and when it was taken. */
export interface CpuSnapshot {
  at: number;
  seconds: Map<string, number>;
}

interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  cpuSeconds: number;
}

// USER_HZ: 100 on every Linux this runs on (sysconf is not reachable from Node without a native module).
const TICKS_PER_SECOND = 100;

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: it runs from the first '(' to the last ')'.
    const open = text.indexOf('(');
    const close = text.lastIndexOf(')');
    const rest = text.slice(close + 2).split(' ');
    // Fields after comm start at field 3 (state): ppid is field 4, utime 14 and stime 15.
    const ppid = Number(rest[1]);
    const ticks = Number(rest[11]) + Number(rest[12]);
    return { pid, ppid, comm: text.slice(open + 1, close), cpuSeconds: ticks / TICKS_PER_SECOND };
  } catch {
    return undefined; // gone between the listing and the read
  }
}

/** CPU seconds process `pid` has spent so far, or undefined when it is gone (or off Linux). */
export function processCpuSeconds(pid: number): number | undefined {
  return readStat(pid)?.cpuSeconds;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** The stack's servers and anything else, by process name and command line. */
function byName(p: ProcStat, selfPid: number): string {
  if (p.pid === selfPid) return 'benchmark process';
  if (p.comm === 'postgres') return 'postgresql';
  if (p.comm.startsWith('temporal')) return 'temporal (other)';
  if (p.comm === 'java') {
    const cmd = commandLine(p.pid);
    if (cmd.includes('ConnectDistributed')) return 'kafka connect';
    if (cmd.includes('kafka.Kafka')) return 'kafka';
    if (cmd.includes('apicurio') || cmd.includes('quarkus')) return 'registry';
    return 'java (other)';
  }
  return 'other';
}

/** Every live process's stat, by pid; empty off Linux. */
function liveProcesses(): Map<number, ProcStat> {
  const stats = new Map<number, ProcStat>();
  if (os.platform() !== 'linux') return stats;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readStat(Number(entry));
    if (s) stats.set(s.pid, s);
  }
  return stats;
}

/** The live children of `pid`, e.g. a server this process has just started. */
export function childrenOf(pid: number): number[] {
  return [...liveProcesses().values()].filter((s) => s.ppid === pid).map((s) => s.pid);
}

/**
 * CPU seconds spent so far by every live process, summed per component. `labels` names processes by
 * pid (their descendants inherit the label): the benchmark's role processes, the engine.
 */
export function cpuSnapshot(labels: ReadonlyMap<number, string>): CpuSnapshot {
  const stats = liveProcesses();
  const labelOf = (p: ProcStat): string => {
    for (let q: ProcStat | undefined = p, hops = 0; q && hops < 64; q = stats.get(q.ppid), hops++) {
      const label = labels.get(q.pid);
      if (label) return label;
    }
    return byName(p, process.pid);
  };
  const seconds = new Map<string, number>();
  for (const p of stats.values()) {
    const label = labelOf(p);
    seconds.set(label, (seconds.get(label) ?? 0) + p.cpuSeconds);
  }
  return { at: Date.now(), seconds };
}

/**
 * Each component's CPU seconds between two snapshots times `scale`, rounded to hundredths, largest
 * first, leaving out components under 0.01. A process that exited in between is not counted.
 */
function scaledDeltas(before: CpuSnapshot, after: CpuSnapshot, scale: number): Record<string, number> {
  const out: [string, number][] = [];
  for (const [label, s] of after.seconds) {
    const value = (s - (before.seconds.get(label) ?? 0)) * scale;
    if (value >= 0.01) out.push([label, Math.round(value * 100) / 100]);
  }
  return Object.fromEntries(out.sort((a, b) => b[1] - a[1]));
}

/** Cores each component used between two snapshots (CPU seconds over wall seconds); see scaledDeltas. */
export function coresBetween(before: CpuSnapshot, after: CpuSnapshot): Record<string, number> {
  return scaledDeltas(before, after, 1000 / (after.at - before.at));
}

/**
 * CPU milliseconds each component spent per unit of work (`units`, e.g. sagas started) between two
 * snapshots; see scaledDeltas.
 */
export function cpuMsPerUnit(before: CpuSnapshot, after: CpuSnapshot, units: number): Record<string, number> {
  return scaledDeltas(before, after, 1000 / units);
}
