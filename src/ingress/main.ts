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
import { printHelpIfAsked } from '../cli/help';

async function main(): Promise<void> {
  printHelpIfAsked(
    'npm run ingress',
    'The Kafka ingress: consumes order.placed and order.cancelled (Avro), dedupes, starts or signals orderSaga, dead-letters poison to <topic>.dlq.',
    [
      'KTS_INGRESS_GROUP_ID, KTS_INGRESS_PLACED_TOPIC, KTS_INGRESS_CANCELLED_TOPIC, KTS_INGRESS_TASK_QUEUE_PREFIX',
      'KTS_INGRESS_PARTITION_CONCURRENCY, KTS_INGRESS_MAX_PAYLOAD_BYTES, KTS_INGRESS_BACKOFF_INITIAL_MS, KTS_INGRESS_BACKOFF_MAX_MS',
      'KTS_INGRESS_LOG_LEVEL, KTS_METRICS_PORT (default 9465), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
      'KTS_KAFKA_PORT, KTS_REGISTRY_PORT, KTS_TEMPORAL_PORT, KTS_PG_PORT (see src/config/stack-config.ts)',
    ],
  );

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
