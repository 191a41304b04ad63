import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';

import type { IngressScope } from './ingress-harness';
import { scopeEnv } from './ingress-harness';

const root = path.join(__dirname, '..', '..');
/** Where each spawned member's output goes, as `<scope prefix>-<name>.log`. */
export const INGRESS_LOG_DIR = path.join(root, '.stack', 'logs', 'ingress-tests');

export interface IngressProcess {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** Resolves when the process logs that it runs (joined its group), rejects if it exits first. */
  ready: Promise<void>;
  isReady: () => boolean;
}

/**
 * Runs `src/ingress/main.ts` in its own Node process (no tsx wrapper process, so a SIGKILL hits the
 * consumer itself). Output goes to a log file under .stack/logs/ingress-tests for post-mortems.
 */
export function spawnIngress(scope: IngressScope, name: string, env: Record<string, string> = {}): IngressProcess {
  mkdirSync(INGRESS_LOG_DIR, { recursive: true });
  const log = createWriteStream(path.join(INGRESS_LOG_DIR, `${scope.prefix}-${name}.log`), { flags: 'a' });
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/ingress/main.ts'], {
    cwd: root,
    // Port 0: several members run side by side, each with its own /metrics port.
    env: scopeEnv(scope, { LOG_LEVEL: 'info', KTS_METRICS_PORT: '0', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let readyNow = false;
  const ready = new Promise<void>((resolve, reject) => {
    let seen = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      if (readyNow) return;
      seen = (seen + chunk.toString()).slice(-4096);
      if (seen.includes('"msg":"ingress running"')) {
        readyNow = true;
        resolve();
      }
    });
    void exited.then((code) => reject(new Error(`ingress ${name} exited (${code}) before it ran`)));
  });
  ready.catch(() => undefined);
  return { name, child, exited, ready, isReady: () => readyNow };
}

/** SIGKILL: no shutdown hook runs, nothing is committed, the group notices only by session timeout. */
export async function killHard(p: IngressProcess): Promise<void> {
  p.child.kill('SIGKILL');
  await p.exited;
}

/** SIGTERM: the ingress finishes in-flight records, commits and leaves the group; returns its exit code. */
export async function stopGracefully(p: IngressProcess): Promise<number | null> {
  p.child.kill('SIGTERM');
  return p.exited;
}
