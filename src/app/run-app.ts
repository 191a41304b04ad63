/**
 * Everything of ours that runs against the stack, in one process for local use: provisioning (the
 * one step that holds admin credentials), then the outbox cleaner, the orchestrator and the four service workers, the Kafka ingress,
 * the event store and the Orders HTTP API. Production runs each piece as its own process
 * (workers/*.ts, src/ingress/main.ts, src/api/main.ts, src/event-store/main.ts); the wiring is the same.
 */
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { Worker } from '@temporalio/worker';
import type { Logger } from 'pino';

import { createServiceActivities } from '../../activities';
import { createSagaWorkers } from '../../workers/saga-workers';
import type { WorkerRole } from '../../workers/saga-workers';
import { loadStackConfig, stackEndpoints } from '../config/stack-config';
import { loadDbConfig } from '../db/db-config';
import { outboxWriterFromEnv } from '../outbox/outbox-config';
import { closeServicePools, createServicePools } from '../db/pools';
import type { ServicePools } from '../db/pools';
import { startOrdersApi } from '../api/app';
import type { OrdersApi } from '../api/app';
import { loadApiConfig } from '../api/api-config';
import { OUTBOX_SLOT_NAME } from '../cdc/outbox-connector';
import { startEventStoreConsumer, loadEventStoreConfig } from '../event-store/event-store-consumer';
import type { EventStoreConsumer } from '../event-store/event-store-consumer';
import { startIngress } from '../ingress/app';
import { startOutboxCleaner } from '../outbox/outbox-cleaner';
import { createMetrics } from '../observability/metrics';
import { sampleReplicationSlots } from '../observability/replication-slots';
import type { Metrics } from '../observability/metrics';
import type { Ingress } from '../ingress/app';
import { loadIngressConfig } from '../ingress/config';
import { SimulatedCardGateway, loadGatewayBehaviour } from '../services/card-gateway';
import { logChannel } from '../services/notification-channel';
import { TASK_QUEUES } from '../shared/saga-contract';
import { buildPlan } from '../provision/plan';
import { formatStepLine, runProvision } from '../provision/run';
import { loadProvisionSettings } from '../provision/settings';

const ALL_ROLES: readonly WorkerRole[] = ['saga', 'orders', 'inventory', 'payments', 'notifications'];

export interface RunningApp {
  pools: ServicePools;
  ingress: Ingress;
  /** The one registry of the in-process app: the workers and the ingress record into it. */
  metrics: Metrics;
  api: OrdersApi;
  eventStore: EventStoreConsumer;
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
  onStep('provisioning: migrations, topics, registry subjects, search attributes, publication, connector');
  // The newcomer's all-in-one job provisions like `npm run provision` (reordering subjects an older
  // build registered out of file order: ids are kept); every piece below then only verifies.
  const provision = loadProvisionSettings(env);
  await runProvision(buildPlan(provision.plan), provision.targets, {
    reorderSubjects: true,
    onProgress: ({ index, total, report }) => {
      if (report?.outcome === 'changed') onStep(formatStepLine(index, total, report));
    },
  });
  const dbConfig = loadDbConfig(env);
  const pools = createServicePools(dbConfig);
  // Rows are deleted only once the connector's slot has confirmed them, so cleaning never loses one.
  const cleaner = startOutboxCleaner({
    slotName: OUTBOX_SLOT_NAME,
    outboxes: {
      orders: pools.orders,
      inventory: pools.inventory,
      payments: pools.payments,
      notifications: pools.notifications,
    },
    intervalMs: 10_000,
    onError: (err) => logger.warn({ err }, 'outbox clean-up round failed; retrying next round'),
    // Each round also samples the slot's lag and retained WAL for the replication-slot alerts.
    onRound: () => {
      sampleReplicationSlots(pools.orders, metrics).catch((err: unknown) =>
        logger.warn({ err }, 'could not read the replication slots'),
      );
    },
  });
  const activities = createServiceActivities({
    pools,
    gateway: new SimulatedCardGateway(pools.card_gateway, loadGatewayBehaviour(env)),
    channel: logChannel(logger),
    outbox: outboxWriterFromEnv(env),
  });
  onStep('starting the orchestrator and the four service workers (bundling workflow code)');
  // The SDK's chatter and the sagas' expected "compensating" warnings would drown the live counters
  // (the demo compensates on purpose); errors, such as a compensation that failed, still show.
  Runtime.install({ logger: new DefaultLogger('ERROR') });
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
    const ingress = await startIngress(loadIngressConfig(env), logger.child({ component: 'ingress' }), metrics);
    onStep('starting the event store and the Orders HTTP API');
    const eventStore = await startEventStoreConsumer(loadEventStoreConfig(env));
    const api = await startOrdersApi(loadApiConfig(env), dbConfig);
    let stopping: Promise<void> | undefined;
    return {
      pools,
      ingress,
      metrics,
      api,
      eventStore,
      stop: () =>
        (stopping ??= (async () => {
          await api.stop();
          await ingress.stop();
          await eventStore.stop();
          await cleaner.stop();
          for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
          await running;
          await connection.close();
          await closeServicePools(pools);
        })()),
    };
  } catch (err) {
    await cleaner.stop();
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await running.catch(() => undefined);
    await connection.close();
    await closeServicePools(pools);
    throw err;
  }
}
