/** `npm run event-store`: the event store consumer (KTS_EVENT_STORE_* settings). SIGTERM stops it cleanly. */
import { initTracing } from '../observability/tracing';
import { Kafka, logLevel } from 'kafkajs';

import { LagMonitor } from '../observability/consumer-lag';
import { startMetrics } from '../observability/metrics';
import { loadEventStoreConfig, startEventStoreConsumer } from './event-store-consumer';

async function main(): Promise<void> {
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
