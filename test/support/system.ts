/**
 * The system under test, started the way every process starts it: startRoles (src/app/roles.ts) on
 * settings parsed from the test's KTS_SCOPE and overrides (process.env is never changed). Tests that
 * must provoke a failure do it around the real parts (activity interceptors, the gateway's
 * randomness), not by swapping them.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import pino from 'pino';

import type { RunningRoles } from '../../src/app/roles';
import { startRoles } from '../../src/app/roles';
import type { Role, Settings } from '../../src/config/settings';
import type { Metrics } from '../../src/observability/metrics';
import { createMetrics } from '../../src/observability/metrics';
import type { OrderDetails, SagaTaskQueues, SagaTuning } from '../../src/shared/saga-contract';
import { orderWorkflowId, sagaStartMetadata } from '../../src/shared/saga-contract';
import type { NotificationChannel } from '../../src/simulated-external/notification-channel';
import { bundleSagaWorkflows } from '../../workers/saga-workers';
import type { orderSaga } from '../../workflows';
import { temporalClient } from './ingress-harness';
import { TEST_TUNING } from './saga-harness';
import { testSettings } from './settings';
import { uniqueName } from './stack';

export interface SystemOptions {
  /** The test's KTS_SCOPE: its task queues, topics and group (default a fresh one). */
  scope?: string;
  /** Variables on top of the environment, as a deployment would set them. */
  env?: Record<string, string>;
  metrics?: Metrics;
  channel?: NotificationChannel;
  activityInterceptors?: ActivityInterceptorsFactory[];
  gatewayRandom?: () => number;
}

export interface RunningSystem<R extends Role> {
  scope: string;
  settings: Settings<R>;
  running: RunningRoles;
  client: Client;
  taskQueues: SagaTaskQueues;
  /** Starts an orderSaga on the scope's queue as the ingress would, with the tests' fast retries. */
  start(order: OrderDetails, tuning?: Partial<SagaTuning>): Promise<WorkflowHandle<typeof orderSaga>>;
  /** A fresh SKU with `available` units, written through the inventory role's own pool. */
  stockedSku(available: number): Promise<string>;
  stop(): Promise<void>;
}

let runtimeInstalled = false;
/** The SDK's warnings about failures a test provokes on purpose would bury the report; errors still show. */
function quietTemporalRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger('ERROR') });
}

/** One bundle per test file and tracing setting: bundling is CPU-bound and the machine is shared. */
const bundles = new Map<boolean, Promise<WorkflowBundleWithSourceMap>>();

/** Starts `roles` through startRoles on the scope's settings; stop() ends them and the client. */
export async function startSystem<R extends Role>(
  roles: readonly R[],
  opts: SystemOptions = {},
): Promise<RunningSystem<R>> {
  quietTemporalRuntime();
  const scope = opts.scope ?? uniqueName('system');
  const settings = testSettings(roles, scope, { LOG_LEVEL: 'silent', ...opts.env });
  const traced = settings.common.temporalTracing;
  const bundle = bundles.get(traced) ?? bundleSagaWorkflows({ logger: new DefaultLogger('ERROR'), traced });
  bundles.set(traced, bundle);
  const running = await startRoles(settings, roles, {
    logger: pino({ level: 'silent' }),
    metrics: opts.metrics ?? createMetrics(`test-${scope}`),
    workflowBundle: await bundle,
    channel: opts.channel,
    activityInterceptors: opts.activityInterceptors,
    gatewayRandom: opts.gatewayRandom,
  });
  // The client follows the settings (TEMPORAL_ADDRESS in opts.env points the whole system elsewhere).
  const temporal = await temporalClient(settings.temporal.connection.address);
  const taskQueues = settings.common.names.taskQueues;
  return {
    scope,
    settings,
    running,
    client: temporal.client,
    taskQueues,
    start: (order, tuning) =>
      temporal.client.workflow.start<typeof orderSaga>('orderSaga', {
        taskQueue: taskQueues.saga,
        workflowId: orderWorkflowId(order.orderId),
        args: [{ order, taskQueues, tuning: { ...TEST_TUNING, ...tuning } }],
        ...sagaStartMetadata(order),
      }),
    async stockedSku(available) {
      const inventory = running.pools.inventory;
      if (!inventory) throw new Error('stockedSku needs the inventory role');
      const sku = uniqueName('sku');
      await inventory.query('INSERT INTO inventory.stock (sku, available) VALUES ($1, $2)', [sku, available]);
      return sku;
    },
    async stop() {
      await running.stop();
      await temporal.close();
    },
  };
}

/**
 * Fails one real activity for the calls `when` picks, with the failure `fail` makes; every other
 * call runs the real activity. Fault injection around the real workers, as an interceptor would.
 */
export function failActivity(
  activityType: string,
  when: (input: Record<string, unknown>) => boolean,
  fail: () => Error,
): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      execute: (input, next) =>
        ctx.info.activityType === activityType && when((input.args[0] ?? {}) as Record<string, unknown>)
          ? Promise.reject(fail())
          : next(input),
    },
  });
}

/** A retryable failure of the given type, as an unreachable dependency raises it. */
export const retryable = (message: string, type: string) => () => ApplicationFailure.retryable(message, type);
