/**
 * Wires the ingress from its settings: Kafka consumer and dead-letter producer, registry codec,
 * ledger pool, Temporal client. One process may run several (tests do); each owns its connections.
 */
import { Client } from '@temporalio/client';
import { logLevel } from 'kafkajs';

import { countParkedSagas } from '../cli/parked-sagas';
import { connectTemporal, createKafka, createPgPool, createProducer, createRegistryClient } from '../config/clients';
import { EventCodec } from '../events/codec';
import { deadLetterTopic } from '../events/topics';
import { LagMonitor } from '../observability/consumer-lag';
import type { Logger } from '../observability/logger';
import { createLogger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { initTracing, temporalTracingPlugin } from '../observability/tracing';
import { verifyRoles } from '../provision/verify';
import { ORDER_SAGA_WORKFLOW_TYPE } from '../shared/saga-contract';
import type { IngressConfig } from './config';
import { IngressConsumer } from './consumer';
import { sendDeadLetter } from './dead-letter';
import { IngressHandler } from './handler';
import { IngressLedger } from './ledger';
import { TemporalSagaGateway } from './saga-gateway';

/** The client's own retries cover short broker blips; longer outages surface as handler errors. */
const KAFKA_RETRY = { retries: 5, initialRetryTime: 200 };

export interface Ingress {
  consumer: IngressConsumer;
  /** Graceful: finishes in-flight records, commits, leaves the group, closes every connection. */
  stop(): Promise<void>;
}

/**
 * Builds and starts an ingress. Verifies first, as its own role, that provisioning migrated the
 * ledger and created its topics and dead-letter topics. With `metrics`, records what it handles and
 * keeps consumer lag, dead-letter queue size and sagas
 * in flight current every `cfg.lagIntervalMs`.
 */
export async function startIngress(
  settings: IngressConfig,
  log: Logger = createLogger('kts-ingress', undefined, settings.common.logLevel),
  metrics?: Metrics,
): Promise<Ingress> {
  const cfg = settings.roles.ingress;
  const names = settings.common.names;
  const groupId = names.groups.ingress;
  const kafka = createKafka(settings.kafka, names.ingressClientId, {
    logLevel: logLevel.ERROR,
    retry: KAFKA_RETRY,
  });
  const ingressTopics = { placed: names.topics.orderPlaced, cancelled: names.topics.orderCancelled };
  const topics = [ingressTopics.placed, ingressTopics.cancelled];
  // Verifies first, as its own role, that provisioning migrated the ledger and created its topics
  // and dead-letter topics; fails fast with one line saying what to run.
  await verifyRoles(['ingress'], {
    schemaUrls: { ingress: cfg.pgUrl },
    topics: [...topics, ...topics.map(deadLetterTopic)],
    kafka: settings.kafka,
    pgSsl: settings.postgres.ssl,
  });
  // Dead letters: idempotent and acks=all like every producer of the app, with the client's short
  // retries, so a long outage surfaces as a handler error (the partition pauses and retries).
  const producer = createProducer(kafka, KAFKA_RETRY);
  await producer.connect();
  const pool = createPgPool(cfg.pgUrl, settings.postgres, {
    // One connection per record that can be in flight, plus the two spare ones it always had.
    max: cfg.partitionConcurrency * cfg.maxInFlightPerPartition + 2,
    applicationName: 'kts-ingress',
    onError: (err) => log.warn({ err }, 'ledger connection failed'),
  });
  const connection = await connectTemporal(settings.temporal);
  // The ingress span exists either way (its trace id is logged). The plugin's client interceptor puts
  // it into the workflow's headers only where workers trace too (KTS_TEMPORAL_TRACING): untraced
  // workers never read that header, and the interceptor costs CPU on every start.
  const tracing = initTracing('kts-ingress');
  const client = new Client({
    connection,
    namespace: settings.temporal.namespace,
    plugins: settings.common.temporalTracing ? [temporalTracingPlugin(tracing)] : [],
  });
  const taskQueues = names.taskQueues;
  const handler = new IngressHandler({
    codec: new EventCodec(createRegistryClient(settings.registry), { maxPayloadBytes: cfg.maxPayloadBytes }),
    ledger: new IngressLedger(pool),
    gateway: new TemporalSagaGateway(client, connection, taskQueues, cfg.temporalTimeoutMs),
    deadLetter: (source, cause) => sendDeadLetter(producer, source, cause, groupId),
    topics: ingressTopics,
    log,
  });
  const consumer = new IngressConsumer(
    kafka,
    handler,
    {
      groupId,
      topics,
      partitionConcurrency: cfg.partitionConcurrency,
      maxInFlightPerPartition: cfg.maxInFlightPerPartition,
      backoff: cfg.backoff,
      sessionTimeoutMs: cfg.sessionTimeoutMs,
    },
    log,
    metrics,
  );
  await consumer.start();
  const inFlightQuery =
    `WorkflowType = '${ORDER_SAGA_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' ` +
    `AND TaskQueue = '${taskQueues.saga}'`;
  const lag = metrics
    ? new LagMonitor(
        kafka,
        metrics,
        { groupId, topics, deadLetterTopics: topics.map(deadLetterTopic), intervalMs: cfg.lagIntervalMs },
        log,
        // The ingress starts the sagas and already talks to Temporal, so it counts the ones running.
        async () => {
          const { count } = await client.workflow.count(inFlightQuery);
          metrics.sagasInFlight.set({ task_queue: taskQueues.saga }, count);
          const parked = await countParkedSagas(client, {
            taskQueue: taskQueues.saga,
            overdueAfterMs: cfg.parkedAlertAfterMs,
          });
          metrics.sagasParked.set({ task_queue: taskQueues.saga }, parked.parked);
          metrics.sagasParkedOverdue.set({ task_queue: taskQueues.saga }, parked.overdue);
        },
      )
    : undefined;
  lag?.start();
  let stopping: Promise<void> | undefined;
  return {
    consumer,
    stop: () =>
      (stopping ??= (async () => {
        await consumer.stop();
        await lag?.stop();
        await producer.disconnect();
        await connection.close();
        await pool.end();
      })()),
  };
}
