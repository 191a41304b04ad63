import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import type { Env, Role } from '../config/settings';
import { credentialOwners } from '../config/settings';
import { repoRoot } from '../config/stack-config';

/** One deployed process of the app (an entry point that goes through runProcess), run as its own Node process. */
export interface RoleProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Resolves with the exit code (or the signal's name) when the process ends. */
  exited: Promise<number | string>;
  /** Resolves once the process logs that its roles run; rejects if it exits first. */
  ready: Promise<void>;
  /** The last lines of its log, for a failure message. */
  tail(lines?: number): string;
  /** SIGTERM (the clean stop runProcess gives it), SIGKILL after `graceMs`; resolves with the exit. */
  stop(graceMs?: number): Promise<number | string>;
}

/**
 * Starts `entry` (e.g. `workers/all-workers.ts`, `src/ingress/main.ts`) in its own Node process
 * with exactly `env`, its JSON log appended to `logFile`. No tsx wrapper process: a signal reaches
 * the app itself. `runningMessage` is the line runProcess logs once the roles run
 * (`<role>+<role> running`), so the process must log at level info or below. Shared by the e2e
 * tests and the benchmarks, which both run the system as a deployment does.
 */
export function spawnRoleProcess(
  name: string,
  entry: string,
  env: NodeJS.ProcessEnv,
  logFile: string,
  runningMessage: string,
): RoleProcess {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const log = fs.createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: repoRoot(),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const needle = `"msg":"${runningMessage}"`;
  const ready = new Promise<void>((resolve, reject) => {
    let seen = '';
    let done = false;
    child.stdout?.on('data', (chunk: Buffer) => {
      if (done) return;
      seen = (seen + chunk.toString()).slice(-8192);
      if (seen.includes(needle)) {
        done = true;
        resolve();
      }
    });
    void exited.then((code) => {
      if (!done) reject(new Error(`${name} exited (${code}) before it ran:\n${tailOf(logFile, 20)}`));
    });
  });
  ready.catch(() => undefined);
  return {
    name,
    child,
    logFile,
    exited,
    ready,
    tail: (lines = 20) => tailOf(logFile, lines),
    async stop(graceMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

function tailOf(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * `env` as a deployed process of `roles` is handed it: every database credential variable of
 * another role removed, so a shell that holds them all (a developer's, a benchmark's) can still
 * start processes that runProcess accepts (it refuses foreign credentials).
 */
export function envForRoles(roles: readonly Role[], env: Env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const [name, owners] of credentialOwners()) {
    if (!owners.some((o) => roles.includes(o))) delete out[name];
  }
  return out;
}
