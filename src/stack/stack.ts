import fs from 'node:fs';
import path from 'node:path';

import type { StackConfig } from '../config/stack-config';
import type { Component, ComponentName, StackContext } from './component';
import { dependenciesOf, logFile, pidFile } from './component';
import { connect } from './components/connect';
import { kafka } from './components/kafka';
import { postgres } from './components/postgres';
import { registry } from './components/registry';
import { temporal } from './components/temporal';
import { StackError } from './downloads';
import type { PidRecord } from './processes';
import {
  hasCommand,
  isOurProcessAlive,
  isPortOpen,
  processGroupRssBytes,
  readPidRecord,
  sleep,
  stopProcess,
} from './processes';
import { ProgressBoard } from './progress';

/** Start order: every component after those it depends on. */
export const COMPONENTS: readonly Component[] = [postgres, temporal, kafka, registry, connect];

export type Outcome = 'reused' | 'started' | 'restarted' | 'external';

export interface UpResult {
  name: ComponentName;
  outcome: Outcome;
  address: string;
  detail: string;
  ms: number;
}

export function selectComponents(names: string[], cfg: StackConfig): Component[] {
  if (names.length === 0) return [...COMPONENTS];
  const wanted = new Set<ComponentName>();
  const add = (n: string) => {
    const c = COMPONENTS.find((x) => x.name === n);
    if (!c) throw new StackError(`unknown component '${n}'; choose from ${COMPONENTS.map((x) => x.name).join(', ')}`);
    dependenciesOf(c, cfg).forEach(add);
    wanted.add(c.name);
  };
  names.forEach(add);
  return COMPONENTS.filter((c) => wanted.has(c.name));
}

/** Checks commands every selected component needs, before anything is downloaded or started. */
export function checkPrerequisites(components: Component[]): void {
  for (const c of components) {
    for (const p of c.prerequisites) {
      if (p.command === 'java' && process.env.JAVA_HOME) continue;
      if (!hasCommand(p.command)) throw new StackError(`'${p.command}' is not on PATH (${c.name} needs it): ${p.hint}`);
    }
  }
}

async function healthy(
  c: Component,
  cfg: StackConfig,
): Promise<{ ok: true; detail: string } | { ok: false; why: string }> {
  try {
    return { ok: true, detail: await c.health(cfg) };
  } catch (err) {
    return { ok: false, why: err instanceof Error ? err.message : String(err) };
  }
}

async function waitHealthy(c: Component, ctx: StackContext, rec: PidRecord | undefined): Promise<string> {
  const deadline = Date.now() + c.startupTimeoutMs;
  let last = '';
  for (;;) {
    const h = await healthy(c, ctx.cfg);
    if (h.ok) return h.detail;
    last = h.why;
    if (rec && !isOurProcessAlive(rec)) {
      throw new StackError(`${c.name} exited during start-up (${last}); see ${logFile(ctx.cfg, c.name)}`);
    }
    if (Date.now() > deadline) {
      throw new StackError(
        `${c.name} not healthy after ${c.startupTimeoutMs / 1000}s (${last}); see ${logFile(ctx.cfg, c.name)}`,
      );
    }
    ctx.progress('waiting for health check');
    await sleep(500);
  }
}

/** Brings one component up: reuse ours if healthy, restart ours if dead or sick, never fight a stranger. */
async function upOne(c: Component, cfg: StackConfig, board: ProgressBoard): Promise<UpResult> {
  const t0 = Date.now();
  const ctx: StackContext = { cfg, progress: (text) => board.update(c.name, text) };
  const address = c.address(cfg);
  const done = (outcome: Outcome, detail: string): UpResult => {
    board.update(c.name, `${outcome} — ${detail}`, true);
    return { name: c.name, outcome, address, detail, ms: Date.now() - t0 };
  };
  const rec = readPidRecord(pidFile(cfg, c.name));
  let restarting = false;
  const ours = rec !== undefined && isOurProcessAlive(rec);
  if (ours && c.startedAs && !c.startedAs(cfg, rec)) {
    // Ours, but another kind than the settings now ask for (the other Temporal): replace it at once.
    ctx.progress('settings ask for another server: restarting');
    await stopProcess(rec);
    restarting = true;
  } else if (ours) {
    ctx.progress('checking the running server');
    const h = await healthy(c, cfg);
    if (h.ok) return done('reused', h.detail);
    // It may still be starting (e.g. a previous `up` was interrupted): give it its start-up window.
    try {
      return done('reused', await waitHealthy(c, ctx, rec));
    } catch {
      ctx.progress('unhealthy: restarting');
      await stopProcess(rec);
      restarting = true;
    }
  } else {
    const busy = [];
    for (const port of c.ports(cfg)) if (await isPortOpen(port, cfg.host)) busy.push(port);
    if (busy.length > 0) {
      const h = await healthy(c, cfg);
      // Someone else's healthy server (another checkout, docker compose): use it, never stop it.
      if (h.ok) return done('external', h.detail);
      throw new StackError(
        `port ${busy.join(', ')} for ${c.name} is taken by another program that is not a healthy ${c.name}: stop it or set the KTS_*_PORT variables`,
      );
    }
  }
  ctx.progress('installing');
  await c.install(ctx);
  ctx.progress('starting');
  const started = await c.start(ctx);
  const detail = await waitHealthy(c, ctx, started);
  return done(restarting || rec ? 'restarted' : 'started', detail);
}

/**
 * Brings the selected components up as local processes, in parallel where dependencies allow.
 * Idempotent: healthy components are reused, dead ones replaced.
 */
export async function stackUp(
  cfg: StackConfig,
  names: string[] = [],
  board = new ProgressBoard(),
): Promise<UpResult[]> {
  const components = selectComponents(names, cfg);
  checkPrerequisites(components);
  fs.mkdirSync(cfg.dataDir, { recursive: true });
  fs.mkdirSync(cfg.cacheDir, { recursive: true });
  const release = acquireLock(cfg);
  board.start();
  try {
    const running = new Map<ComponentName, Promise<UpResult>>();
    for (const c of components) {
      const deps = dependenciesOf(c, cfg).flatMap((d) => running.get(d) ?? []);
      running.set(
        c.name,
        Promise.all(deps).then(() => upOne(c, cfg, board)),
      );
    }
    // allSettled first so no start-up is abandoned half-way, then surface the first error.
    const settled = await Promise.allSettled([...running.values()]);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<UpResult>).value);
  } finally {
    board.stop();
    release();
  }
}

export interface StatusRow {
  name: ComponentName;
  address: string;
  pid: number | undefined;
  ours: boolean;
  healthy: boolean;
  detail: string;
  rssBytes: number | undefined;
}

export async function stackStatus(cfg: StackConfig): Promise<StatusRow[]> {
  return Promise.all(
    COMPONENTS.map(async (c) => {
      const rec = readPidRecord(pidFile(cfg, c.name));
      const ours = Boolean(rec && isOurProcessAlive(rec));
      const h = await healthy(c, cfg);
      return {
        name: c.name,
        address: c.address(cfg),
        pid: ours ? rec?.pid : undefined,
        ours,
        healthy: h.ok,
        detail: h.ok ? h.detail : h.why,
        rssBytes: ours && rec ? groupRss([rec, ...extraRecords(c, cfg)]) : undefined,
      };
    }),
  );
}

/** Live records of a component's further processes (see Component.extraPidFiles). */
function extraRecords(c: Component, cfg: StackConfig): PidRecord[] {
  return (c.extraPidFiles?.(cfg) ?? []).flatMap((f) => {
    const rec = readPidRecord(f);
    return rec && isOurProcessAlive(rec) ? [rec] : [];
  });
}

function groupRss(recs: PidRecord[]): number | undefined {
  const sizes = recs.map((r) => processGroupRssBytes(r.pid) ?? 0);
  const total = sizes.reduce((a, b) => a + b, 0);
  return total > 0 ? total : undefined;
}

/** Stops, in reverse start order, only the processes this tool started (by recorded pid). */
export async function stackDown(cfg: StackConfig, log: (line: string) => void = console.log): Promise<void> {
  for (const c of [...COMPONENTS].reverse()) {
    // A cluster's further nodes stop together with the first: one after another, the last ones
    // would lose their quorum and wait out the grace period instead of shutting down cleanly.
    const extras = (c.extraPidFiles?.(cfg) ?? []).flatMap((file) => {
      const rec = readPidRecord(file);
      return rec ? [{ file, rec }] : [];
    });
    const stoppingExtras = extras.map(async ({ file, rec }) => {
      const result = await stopProcess(rec);
      fs.rmSync(file, { force: true });
      if (result === 'stopped') log(`■ stopped ${c.name} ${path.basename(file, '.pid.json')} (pid ${rec.pid})`);
    });
    const file = pidFile(cfg, c.name);
    const rec = readPidRecord(file);
    if (!rec) {
      await Promise.all(stoppingExtras);
      continue;
    }
    const [result] = await Promise.all([stopProcess(rec), ...stoppingExtras]);
    fs.rmSync(file, { force: true });
    log(
      `${result === 'stopped' ? '■ stopped' : '· was not running'} ${c.name}${result === 'stopped' ? ` (pid ${rec.pid})` : ''}`,
    );
  }
}

/** One `up` at a time per data folder; a lock left by a dead process is taken over. */
function acquireLock(cfg: StackConfig): () => void {
  const file = path.join(cfg.dataDir, 'stack.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(file, { force: true });
    } catch {
      const holder = Number(fs.readFileSync(file, 'utf8'));
      let alive = false;
      try {
        process.kill(holder, 0);
        alive = true;
      } catch {
        alive = false;
      }
      if (alive && holder !== process.pid) {
        throw new StackError(`another 'stack up' (pid ${holder}) is running on ${cfg.dataDir}; wait for it to finish`);
      }
      fs.rmSync(file, { force: true });
    }
  }
  throw new StackError(`cannot take the lock ${file}`);
}
