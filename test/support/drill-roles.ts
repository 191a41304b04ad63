/**
 * The failure drills run the app's own processes: each "process" is the app's start function
 * (startRoles, what every entry point runs through runProcess) on a test scope's settings, so the
 * drill exercises the same wiring, verification and stop order as a deployment, and can stop one
 * process while the others keep running. Each process logs JSON lines to a file for post-mortems.
 */
import { execFile } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { DefaultLogger, Runtime } from '@temporalio/worker';

import type { RoleContext, RunningRoles } from '../../src/app/roles';
import { startRoles } from '../../src/app/roles';
import type { Role } from '../../src/config/settings';
import { createLogger } from '../../src/observability/logger';
import { createMetrics } from '../../src/observability/metrics';
import { testSettings } from './settings';

const root = path.join(__dirname, '..', '..');
export const DRILL_LOG_DIR = path.join(root, '.stack', 'logs', 'drills');

export interface DrillProcess {
  name: string;
  running: RunningRoles;
  stop(): Promise<void>;
}

/**
 * Starts `roles` under KTS_SCOPE=`scope` with `env` on top of the environment, as one process of a
 * deployment would (its settings parsed once, its own metrics registry and log file).
 */
export async function startDrillProcess(
  scope: string,
  name: string,
  roles: readonly Role[],
  env: Record<string, string> = {},
  ctx: Partial<RoleContext> = {},
): Promise<DrillProcess> {
  mkdirSync(DRILL_LOG_DIR, { recursive: true });
  const file = createWriteStream(path.join(DRILL_LOG_DIR, `${scope}-${name}.log`), { flags: 'a' });
  const settings = testSettings(roles, scope, { LOG_LEVEL: 'info', ...env });
  const logger = createLogger(`drill-${name}`, file, settings.common.logLevel);
  const running = await startRoles(settings, roles, { logger, metrics: createMetrics(`drill-${name}`), ...ctx });
  return {
    name,
    running,
    async stop() {
      await running.stop();
      await new Promise<void>((resolve) => file.end(resolve));
    },
  };
}

/**
 * The SDK's own lines (worker state changes, the expected nondeterminism of a replay meant to fail)
 * stay out of the test output; the drills' processes log to their files.
 */
export function quietTemporalRuntime(): void {
  try {
    Runtime.install({
      logger: new DefaultLogger('ERROR'),
      telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
    });
  } catch {
    // Installed already by an earlier test file in this Jest process: keep that one.
  }
}

const run = promisify(execFile);

/**
 * Runs the real operator CLI (`npm run orders -- …`, i.e. src/cli/orders.ts) as its own process and
 * returns its output; a non-zero exit rejects with the output in the message.
 */
export async function ordersCli(args: string[], env: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/orders.ts', ...args], {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: 'silent', ...env },
      maxBuffer: 8 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    throw new Error(`orders ${args.join(' ')} exited ${e.code}: ${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

/** Every WorkflowTaskFailed in a run's history, with its cause and message (nondeterminism shows here). */
export async function workflowTaskFailures(
  handle: Pick<WorkflowHandle, 'fetchHistory'>,
): Promise<{ cause: string; message: string }[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).flatMap((e) => {
    const a = e.workflowTaskFailedEventAttributes;
    if (!a) return [];
    const cause =
      a.cause === null || a.cause === undefined ? 'unknown' : temporal.api.enums.v1.WorkflowTaskFailedCause[a.cause];
    return [{ cause: String(cause), message: a.failure?.message ?? '' }];
  });
}
