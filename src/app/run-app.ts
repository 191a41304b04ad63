/**
 * Everything of ours that runs against the stack, in one process for local use: the migrations, the
 * orchestrator and the four service workers, and the Kafka ingress. Production runs each piece as
 * its own process (workers/*.ts, src/ingress/main.ts); the wiring is the same.
 */
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { Worker } from '@temporalio/worker';
import { Kafka, logLevel } from 'kafkajs';
import type { Logger } from 'pino';

import { createServiceActivities } from '../../activities';
import { createSagaWorkers } from '../../workers/saga-workers';
import type { WorkerRole } from '../../workers/saga-workers';
import { loadStackConfig, stackEndpoints } from '../config/stack-config';
import { loadDbConfig } from '../db/db-config';
import { migrateAll } from '../db/migrate';
import { outboxWriterFromEnv } from '../outbox/outbox-config';
import { closeServicePools, createServicePools } from '../db/pools';
import type { ServicePools } from '../db/pools';
import { startIngress } from '../ingress/app';
import { createMetrics } from '../observability/metrics';
import type { Metrics } from '../observability/metrics';
import type { Ingress } from '../ingress/app';
import { loadIngressConfig } from '../ingress/config';
import { TOPICS } from '../events/topics';
import { ensureTopics } from '../kafka/ensure-topics';
import { SimulatedCardGateway, loadGatewayBehaviour } from '../services/card-gateway';
import { logChannel } from '../services/notification-channel';
import { TASK_QUEUES } from '../shared/saga-contract';

/** Partitions of the order topics: how many orders the ingress handles side by side. */
const ORDER_TOPIC_PARTITIONS = 6;

const ALL_ROLES: readonly WorkerRole[] = ['saga', 'orders', 'inventory', 'payments', 'notifications'];

export interface RunningApp {
  pools: ServicePools;
  ingress: Ingress;
  /** The one registry of the in-process app: the workers and the ingress record into it. */
  metrics: Metrics;
  /** Graceful: the ingress finishes and commits in-flight records, then the workers drain. */
  stop(): Promise<void>;
}

/**
 * Starts the app on the running stack. Settings come from the environment (each module parses its
 * own once and fails fast). `onStep` reports progress so the terminal never goes quiet.
 */
export async function startApp(
  logger: Logger,
  onStep: (text: string) => void,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningApp> {
  const metrics = createMetrics('main');
  onStep('migrating service schemas');
  const dbConfig = loadDbConfig(env);
  await migrateAll(dbConfig);
  const pools = createServicePools(dbConfig);
  const activities = createServiceActivities({
    pools,
    gateway: new SimulatedCardGateway(pools.card_gateway, loadGatewayBehaviour(env)),
    channel: logChannel(logger),
    outbox: outboxWriterFromEnv(env),
  });
  onStep('starting the orchestrator and the four service workers (bundling workflow code)');
  // The SDK's own lifecycle chatter would drown the live counters; warnings and errors still show.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address: stackEndpoints(loadStackConfig(env)).temporalAddress });
  let workers: Worker[] = [];
  let running: Promise<unknown> = Promise.resolve();
  try {
    workers = await createSagaWorkers({
      connection,
      taskQueues: TASK_QUEUES,
      roles: ALL_ROLES,
      activities,
      metrics,
      logger: logger.child({ component: 'workers' }),
    });
    running = Promise.all(workers.map((w) => w.run()));
    onStep('starting the Kafka ingress');
    const { kafkaBrokers } = stackEndpoints(loadStackConfig(env));
    const kafka = new Kafka({ clientId: 'app-setup', brokers: kafkaBrokers, logLevel: logLevel.NOTHING });
    await ensureTopics(kafka, [
      { topic: TOPICS.orderPlaced, numPartitions: ORDER_TOPIC_PARTITIONS },
      { topic: TOPICS.orderCancelled, numPartitions: ORDER_TOPIC_PARTITIONS },
    ]);
    const ingress = await startIngress(loadIngressConfig(env), logger.child({ component: 'ingress' }), metrics);
    let stopping: Promise<void> | undefined;
    return {
      pools,
      ingress,
      metrics,
      stop: () =>
        (stopping ??= (async () => {
          await ingress.stop();
          for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
          await running;
          await connection.close();
          await closeServicePools(pools);
        })()),
    };
  } catch (err) {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await running.catch(() => undefined);
    await connection.close();
    await closeServicePools(pools);
    throw err;
  }
}
