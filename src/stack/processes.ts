import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** What the stack tool remembers about a process it started, so `down` never kills a stranger. */
export interface PidRecord {
  pid: number;
  /** Kernel start time of the process (clock ticks since boot): guards against pid reuse. */
  startTicks: number;
  command: string;
  startedAt: string;
}

/** Reads field 22 of /proc/<pid>/stat; undefined when the process does not exist. */
export function processStartTicks(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces or parentheses: split after its closing paren.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    if (state === 'Z' || state === 'X') return undefined;
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

function rssBytes(pid: string | number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Resident memory of a process group in bytes: the server and every process it forked (PostgreSQL's
 * backends, for one), since the leader alone understates what a component costs.
 */
export function processGroupRssBytes(pgid: number): number | undefined {
  let total = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const group = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (group === pgid) total += rssBytes(entry);
    } catch {
      // the process ended while we looked
    }
  }
  return total > 0 ? total : undefined;
}

export function isOurProcessAlive(rec: PidRecord): boolean {
  return processStartTicks(rec.pid) === rec.startTicks;
}

export function readPidRecord(file: string): PidRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as PidRecord;
  } catch {
    return undefined;
  }
}

export interface DetachedSpawn {
  command: string;
  args: string[];
  logFile: string;
  pidFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
}

/**
 * Starts a server that outlives this CLI: its own process group, output appended to a log file,
 * and a pid record written before returning so a crash of the CLI still leaves it stoppable.
 */
export function spawnDetached(opts: DetachedSpawn): PidRecord {
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  fs.mkdirSync(path.dirname(opts.pidFile), { recursive: true });
  const out = fs.openSync(opts.logFile, 'a');
  fs.writeSync(out, `\n--- ${new Date().toISOString()} ${opts.command} ${opts.args.join(' ')}\n`);
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', out, out],
    uid: opts.uid,
    gid: opts.gid,
  });
  fs.closeSync(out);
  if (child.pid === undefined) throw new Error(`could not start ${opts.command}`);
  child.unref();
  const startTicks = processStartTicks(child.pid);
  if (startTicks === undefined) throw new Error(`${opts.command} exited at once; see ${opts.logFile}`);
  const rec: PidRecord = {
    pid: child.pid,
    startTicks,
    command: `${opts.command} ${opts.args.join(' ')}`,
    startedAt: new Date().toISOString(),
  };
  fs.writeFileSync(opts.pidFile, JSON.stringify(rec, null, 2));
  return rec;
}

/** Stops a recorded process group: SIGTERM, then SIGKILL after `graceMs`. Resolves once it is gone. */
export async function stopProcess(rec: PidRecord, graceMs = 15_000): Promise<'stopped' | 'not-running'> {
  if (!isOurProcessAlive(rec)) return 'not-running';
  signalGroup(rec.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isOurProcessAlive(rec) && Date.now() < deadline) await sleep(100);
  if (isOurProcessAlive(rec)) {
    signalGroup(rec.pid, 'SIGKILL');
    while (isOurProcessAlive(rec)) await sleep(50);
  }
  return 'stopped';
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    // Negative pid: the whole group, so wrappers (e.g. the temporal CLI's children) go too.
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** True when something accepts TCP connections on host:port. */
export function isPortOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** True when the given command is on PATH. */
export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
