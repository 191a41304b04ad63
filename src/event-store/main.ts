/** `npm run event-store`: the event store consumer (KTS_EVENT_STORE_* settings). SIGTERM stops it cleanly. */
import { initTracing } from '../observability/tracing';
import { Kafka, logLevel } from 'kafkajs';

import { LagMonitor } from '../observability/consumer-lag';
import { startMetrics } from '../observability/metrics';
import { loadEventStoreConfig, startEventStoreConsumer } from './event-store-consumer';
import { printHelpIfAsked } from '../cli/help';

async function main(): Promise<void> {
  printHelpIfAsked(
    'npm run event-store',
    'The event store: appends every domain event, deduped by eventId, to an append-only PostgreSQL store.',
    [
      'KTS_EVENT_STORE_GROUP_ID, KTS_EVENT_STORE_TOPIC_PREFIX, KTS_DB_PASSWORD_EVENT_STORE',
      'KTS_METRICS_PORT (default 9468), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, LOG_LEVEL',
      'KTS_KAFKA_PORT, KTS_REGISTRY_PORT, KTS_PG_PORT (see src/config/stack-config.ts)',
    ],
  );

  initTracing('kts-event-store');
  const cfg = loadEventStoreConfig();
  const running = await startEventStoreConsumer(cfg);
  const served = await startMetrics('eventStore');
  // The event store's lag is how far history lags behind the domain topics.
  const lag = new LagMonitor(
    new Kafka({ clientId: `${cfg.groupId}-lag`, brokers: cfg.kafkaBrokers, logLevel: logLevel.NOTHING }),
    served.metrics,
    { groupId: cfg.groupId, topics: cfg.topics, intervalMs: 5_000 },
  );
  lag.start();
  process.stdout.write(`event store consuming ${cfg.topics.join(', ')} as ${cfg.groupId}\n`);
  process.stdout.write(`Prometheus metrics at ${served.url}\n`);
  const stop = () => {
    Promise.all([lag.stop(), running.stop()]).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
