/**
 * The one way a process starts. Every entry point (each worker, the ingress, the API, the event
 * store, the outbox cleaner) is a call to runProcess with its roles; it owns --help, the settings
 * (parsed once), tracing, /metrics, signals, the stop order and the exit code:
 *   0  stopped by SIGINT/SIGTERM after a clean stop
 *   1  failed while starting or running (a worker died, a server refused)
 *   2  invalid settings (nothing was started)
 * Deployed processes log JSON lines to stdout, the Temporal SDK's own lines included.
 */
import type { LogLevel as SdkLogLevel } from '@temporalio/common';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type pino from 'pino';

import { printHelpIfAsked } from '../config/help';
import type { Role, Settings } from '../config/settings';
import type { Env } from '../config/settings';
import { loadSettings, WORKER_ROLES } from '../config/settings';
import type { Logger } from '../observability/logger';
import { createLogger } from '../observability/logger';
import type { MetricsProcess } from '../observability/metrics';
import { startMetrics } from '../observability/metrics';
import { initTracing } from '../observability/tracing';
import type { RunningRoles } from './roles';
import { startRoles } from './roles';

export interface ProcessSpec<R extends Role> {
  /** Service name on every log line and span, e.g. kts-ingress. */
  service: string;
  /** How to start it, for --help. */
  usage: string;
  description: string;
  roles: readonly R[];
  /** Whose default /metrics port this process takes. */
  metrics: MetricsProcess;
  /** Extra flags of this process, for --help (the process reads them from argv itself). */
  flags?: readonly string[];
  /** Defaults of this process under the environment (the main job's demo latency, say). */
  envDefaults?: Env;
  /** Where the JSON log goes; stdout unless given (the interactive main job logs to a file). */
  logDestination?: (settings: Settings<R>) => pino.DestinationStream;
  /** Progress lines for a terminal; processes meant for deployment only log. */
  onStep?: (text: string) => void;
  /** Runs before the roles start (the main job brings the local stack up here). */
  prepare?: (settings: Settings<R>, log: Logger) => Promise<void>;
  /**
   * Runs once everything runs. A number ends the process with that exit code (after the clean
   * stop); undefined keeps it running until a signal. `stopRequested` settles on SIGINT/SIGTERM.
   */
  afterStart?: (ctx: {
    running: RunningRoles;
    settings: Settings<R>;
    log: Logger;
    metricsUrl: string;
    stopRequested: Promise<string>;
  }) => Promise<number | undefined>;
  /** Runs after the clean stop, before exit (the main job may stop the local stack here). */
  afterStop?: (code: number) => Promise<void>;
}

export const EXIT = { ok: 0, failed: 1, invalidSettings: 2 } as const;

const SDK_LEVELS: Record<string, SdkLogLevel> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
  fatal: 'ERROR',
  silent: 'ERROR',
};

/**
 * Routes the Temporal SDK's (Rust core and worker) log lines into the process's JSON logger, and
 * leaves signals to runProcess so the stop order stays ours.
 */
export function installTemporalRuntime(logger: Logger, level: string): void {
  const sdk = logger.child({ component: 'temporal-sdk' });
  Runtime.install({
    shutdownSignals: [],
    logger: new DefaultLogger(SDK_LEVELS[level] ?? 'INFO', (entry) => {
      const meta = entry.meta ?? {};
      switch (entry.level) {
        case 'TRACE':
          sdk.trace(meta, entry.message);
          break;
        case 'DEBUG':
          sdk.debug(meta, entry.message);
          break;
        case 'INFO':
          sdk.info(meta, entry.message);
          break;
        case 'WARN':
          sdk.warn(meta, entry.message);
          break;
        case 'ERROR':
          sdk.error(meta, entry.message);
          break;
      }
    }),
  });
}

/** Runs the process described by `spec` until a signal or a fatal error, then exits. */
export async function runProcess<R extends Role>(
  spec: ProcessSpec<R>,
  argv: readonly string[] = process.argv.slice(2),
  env: Env = process.env,
): Promise<never> {
  printHelpIfAsked(argv, spec.usage, spec.description, spec.roles, spec.flags);
  let settings: Settings<R>;
  try {
    settings = loadSettings(spec.roles, { ...spec.envDefaults, ...env });
  } catch (err) {
    process.stderr.write(`✖ ${spec.service}: ${(err as Error).message}\n`);
    process.exit(EXIT.invalidSettings);
  }
  // First, so every client and worker of the process shares the one tracer provider.
  const tracing = initTracing(spec.service, undefined, settings.common.otlpTracesEndpoint);
  const log = createLogger(spec.service, spec.logDestination?.(settings), settings.common.logLevel);
  if (spec.roles.some((r) => (WORKER_ROLES as readonly Role[]).includes(r))) {
    installTemporalRuntime(log, settings.common.logLevel);
  }

  let signalled: (signal: string) => void = () => undefined;
  const stopRequested = new Promise<string>((resolve) => (signalled = resolve));
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting without a clean stop');
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
    log.info({ signal }, 'stopping');
    signalled(signal);
  };
  // Installed before start-up, so a signal during start-up is a graceful stop too, not a kill.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let code: number = EXIT.ok;
  let served: Awaited<ReturnType<typeof startMetrics>> | undefined;
  let running: RunningRoles | undefined;
  try {
    // Before anything slow, so a taken port fails the start at once.
    served = await startMetrics(spec.metrics, settings.common.metrics);
    await spec.prepare?.(settings, log);
    running = await startRoles(settings, spec.roles, {
      logger: log,
      metrics: served.metrics,
      tracing,
      onStep: spec.onStep,
    });
    log.info(
      {
        roles: spec.roles,
        scope: settings.common.names.scope,
        taskQueues: running.workers.length ? settings.common.names.taskQueues : undefined,
        api: running.api?.url,
        metrics: served.url,
      },
      `${spec.roles.join('+')} running`,
    );
    const after = spec.afterStart?.({ running, settings, log, metricsUrl: served.url, stopRequested });
    const ended = after?.then((c) => (c === undefined ? new Promise<never>(() => undefined) : c));
    const outcome = await Promise.race([stopRequested, running.failed, ...(ended ? [ended] : [])]);
    if (outcome instanceof Error) {
      log.error({ err: outcome }, 'a worker stopped by itself; stopping the process');
      code = EXIT.failed;
    } else if (typeof outcome === 'number') {
      code = outcome;
    }
  } catch (err) {
    log.error({ err }, 'failed');
    process.stderr.write(`✖ ${spec.service}: ${(err as Error).message}\n`);
    code = EXIT.failed;
  } finally {
    await running?.stop();
    await served?.close();
    await tracing.shutdown().catch(() => undefined);
  }
  log.info({ code }, 'stopped');
  await spec.afterStop?.(code).catch((err: unknown) => {
    process.stderr.write(`✖ ${spec.service}: ${(err as Error).message}\n`);
  });
  process.exit(code);
}

/** runProcess for a module's main: any escape becomes one line and exit 1. */
export function main<R extends Role>(spec: ProcessSpec<R>): void {
  runProcess(spec).catch((err: unknown) => {
    process.stderr.write(`✖ ${spec.service}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(EXIT.failed);
  });
}
