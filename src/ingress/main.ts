/**
 * The ingress process: `npm run ingress`. Settings come from KTS_INGRESS_* variables (see config.ts);
 * Prometheus metrics on http://127.0.0.1:9465/metrics (KTS_METRICS_PORT).
 * SIGTERM/SIGINT stop it gracefully: in-flight records finish and are committed before it exits.
 */
import { createLogger } from '../observability/logger';
import { initTracing } from '../observability/tracing';
import type { Ingress } from './app';
import { startIngress } from './app';
import { startMetrics } from '../observability/metrics';
import { loadIngressConfig } from './config';

async function main(): Promise<void> {
  // First, so every span and Temporal client of the process uses the installed provider.
  initTracing('kts-ingress');
  const cfg = loadIngressConfig();
  const log = createLogger('kts-ingress', undefined, cfg.logLevel);
  const state: { ingress?: Ingress; stopRequested: boolean } = { stopRequested: false };
  const stop = (running: Ingress) =>
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'unclean stop');
        process.exit(1);
      },
    );
  // Installed before start-up, so a signal during start-up is a graceful stop too, not a kill.
  const onSignal = (signal: string) => {
    log.info({ signal }, 'stopping');
    state.stopRequested = true;
    if (state.ingress) void stop(state.ingress);
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  const served = await startMetrics('ingress');
  const ingress = await startIngress(cfg, log, served.metrics);
  state.ingress = ingress;
  log.info({ groupId: cfg.groupId, topics: cfg.topics, metrics: served.url }, 'ingress running');
  if (state.stopRequested) await stop(ingress);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
