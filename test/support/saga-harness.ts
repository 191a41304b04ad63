import path from 'node:path';

import type { WorkflowHandle } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';

import { saveFixture } from '../../src/deploy/history-recorder';
import { EventCodec } from '../../src/events/codec';
import { RegistryClient } from '../../src/kafka/registry-client';
import type { Metrics } from '../../src/observability/metrics';
import { OutboxWriter } from '../../src/outbox/outbox-writer';
import type { ServiceActivities } from '../../src/services/all-activities';
import { createServiceActivities } from '../../src/services/all-activities';
import type { OrderDetails, OrderSagaInput, SagaTaskQueues, SagaTuning } from '../../src/shared/saga-contract';
import { orderWorkflowId, sagaStartMetadata, taskQueuesFor } from '../../src/shared/saga-contract';
import type { GatewayBehaviour } from '../../src/simulated-external/card-gateway';
import { SimulatedCardGateway } from '../../src/simulated-external/card-gateway';
import type { WorkerRole } from '../../workers/saga-workers';
import { bundleSagaWorkflows, createSagaWorkers, runWorkersUntil } from '../../workers/saga-workers';
import { orderSaga } from '../../workflows';
import type { DbHarness } from './db-harness';
import { openDb, putStock, recordingChannel } from './db-harness';
import { ensureOrderSearchAttributes } from './search-attributes';
import { endpoints, uniqueName } from './stack';

let runtimeInstalled = false;
/** Worker warnings for failures a test provokes on purpose would bury the report; errors still show. */
function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger('ERROR') });
}

/** Fast retries so failure paths finish in seconds; the shapes of the policies stay the real ones. */
export const TEST_TUNING: SagaTuning = {
  activityTimeoutMs: 10_000,
  forwardRetry: { initialIntervalMs: 100, maximumIntervalMs: 1_000, backoffCoefficient: 2, maximumAttempts: 5 },
  compensationRetry: { initialIntervalMs: 100, maximumIntervalMs: 500, backoffCoefficient: 2, maximumAttempts: 4 },
};

export const CALM_GATEWAY: GatewayBehaviour = { declineRate: 0, transientErrorRate: 0, latencyMs: { min: 0, max: 0 } };

export interface SagaHarness {
  db: DbHarness;
  client: Client;
  workerConnection: NativeConnection;
  bundle: WorkflowBundleWithSourceMap;
  /**
   * The services' outbox writer: its topic prefix is this harness's own, which no connector
   * publishes, so the rows only serve assertions on the outbox tables.
   */
  outbox: OutboxWriter;
  close(): Promise<void>;
}

/**
 * Opens the harness. `workflowsPath` bundles another workflow module instead of workflows/index.ts
 * (e.g. a variant with the pre-parking behaviour).
 */
export async function openSagaHarness(poolSize = 10, workflowsPath?: string): Promise<SagaHarness> {
  quietRuntime();
  const db = await openDb(poolSize);
  const bundle = await bundleSagaWorkflows({ logger: new DefaultLogger('ERROR'), workflowsPath });
  const connection = await Connection.connect({ address: endpoints.temporalAddress });
  // The saga upserts its search attributes; the namespace must know them (provisioning's job in production).
  await ensureOrderSearchAttributes(connection, 'default');
  const workerConnection = await NativeConnection.connect({ address: endpoints.temporalAddress });
  return {
    db,
    client: new Client({ connection }),
    workerConnection,
    bundle,
    outbox: new OutboxWriter({
      codec: new EventCodec(new RegistryClient(endpoints.registryUrl)),
      topicPrefix: uniqueName('saga-outbox'),
    }),
    async close() {
      await connection.close();
      await workerConnection.close();
      await db.close();
    },
  };
}

export interface SagaRun {
  /** The prefix of this run's task queues, for workers started in other processes. */
  taskQueuePrefix: string;
  taskQueues: SagaTaskQueues;
  activities: ServiceActivities;
  channel: ReturnType<typeof recordingChannel>;
  start: (order: OrderDetails, tuning?: Partial<SagaTuning>) => Promise<WorkflowHandle<typeof orderSaga>>;
}

export interface RunOptions {
  gateway?: GatewayBehaviour;
  /** Replaces some real activities (e.g. one that keeps failing); the rest stay real. */
  override?: (real: ServiceActivities) => Partial<{ [K in keyof ServiceActivities]: Partial<ServiceActivities[K]> }>;
  maxConcurrentActivityTaskExecutions?: number;
  /** Workers to run in this process (default: all); a test may run one elsewhere, e.g. in a child process. */
  roles?: WorkerRole[];
  /** Where the orchestrator records saga metrics (through its sinks). */
  metrics?: Metrics;
  /** Outbox writer of the services (default: the harness's), e.g. a CDC scope's to publish the events. */
  outbox?: OutboxWriter;
  /** The KTS_SCOPE whose task queues to serve (e.g. an ingress test's); default a scope of this run's own. */
  scope?: string;
}

/** Runs the orchestrator and all four services on task queues of this test alone while `fn` runs. */
export async function withSagaWorkers<T>(
  h: SagaHarness,
  opts: RunOptions,
  fn: (run: SagaRun) => Promise<T>,
): Promise<T> {
  const taskQueuePrefix = opts.scope ?? uniqueName('saga');
  const taskQueues = taskQueuesFor(taskQueuePrefix);
  const channel = recordingChannel();
  const real = createServiceActivities({
    pools: h.db.pools,
    gateway: new SimulatedCardGateway(h.db.pools.card_gateway, opts.gateway ?? CALM_GATEWAY),
    channel,
    outbox: opts.outbox ?? h.outbox,
  });
  const overrides = opts.override?.(real) ?? {};
  const activities: ServiceActivities = {
    orders: { ...real.orders, ...overrides.orders },
    inventory: { ...real.inventory, ...overrides.inventory },
    payments: { ...real.payments, ...overrides.payments },
    notifications: { ...real.notifications, ...overrides.notifications },
  };
  const workers = await createSagaWorkers({
    connection: h.workerConnection,
    taskQueues,
    roles: opts.roles ?? ['saga', 'orders', 'inventory', 'payments', 'notifications'],
    activities,
    workflowBundle: h.bundle,
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions,
    metrics: opts.metrics,
  });
  return runWorkersUntil(workers, () =>
    fn({
      taskQueuePrefix,
      taskQueues,
      activities,
      channel,
      start: (order, tuning) => {
        const input: OrderSagaInput = { order, taskQueues, tuning: { ...TEST_TUNING, ...tuning } };
        return h.client.workflow.start(orderSaga, {
          taskQueue: taskQueues.saga,
          workflowId: orderWorkflowId(order.orderId),
          args: [input],
          ...sagaStartMetadata(order),
        });
      },
    }),
  );
}

/** A new order for `quantity` of `sku` at 25.00 each; its id (and so its workflow id) is unique. */
export function newOrder(sku: string, quantity = 1, paymentToken = 'tok_visa'): OrderDetails {
  return {
    orderId: uniqueName('ord'),
    customerId: uniqueName('cust'),
    currency: 'EUR',
    paymentToken,
    items: [{ sku, quantity, unitPriceMinor: 2_500 }],
  };
}

export async function stockedSku(h: SagaHarness, available: number): Promise<string> {
  const sku = uniqueName('sku');
  await putStock(h.db, sku, available);
  return sku;
}

/** Where recorded histories live; replayed by test/replay on every CI run. */
export const HISTORIES_DIR = path.join(__dirname, '..', 'replay', 'histories');

/**
 * Version of the saga the recordings come from, part of each fixture's file name so recording again
 * never overwrites the histories of earlier versions: those are what keep old runs replayable.
 * Bump it with every workflow change that adds a patch.
 */
export const RECORDING_VERSION = 'v3';

/**
 * With RECORD_HISTORIES=1, saves the workflow's history from the server as a replay fixture through
 * the project's recorder (the one `npm run histories:record` runs), replacing this version's file.
 */
export async function maybeRecordHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1') return;
  await saveFixture(await handle.fetchHistory(), {
    scenario: name,
    version: RECORDING_VERSION,
    dir: HISTORIES_DIR,
    overwrite: true,
  });
}

/** A failed workflow's cause (type and details), for asserting on failure type strings. */
export async function workflowFailure(p: Promise<unknown>): Promise<{ type: string; details: unknown[] }> {
  try {
    await p;
  } catch (err) {
    const cause = (err as { cause?: { type?: string; details?: unknown[] } }).cause;
    return { type: cause?.type ?? 'unknown', details: cause?.details ?? [] };
  }
  throw new Error('expected the workflow to fail, but it completed');
}

/** A gate an overridden activity waits on, so a test can act while the saga sits at that step. */
export function latch(): { wait: () => Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { wait: () => opened, open: () => open() };
}
