import path from 'node:path';

import type { NativeConnection, WorkflowBundleOption } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';

import type { ServiceActivities } from '../activities';
import type { Metrics } from '../src/observability/metrics';
import type { SagaTaskQueues, ServiceName } from '../src/shared/saga-contract';
import { sagaMetricsSinks } from './saga-metrics-sinks';

/** The workflow code the orchestrator runs; the worker bundles it unless given a prebuilt bundle. */
export const WORKFLOWS_PATH = path.join(__dirname, '..', 'workflows', 'index.ts');

export type WorkerRole = ServiceName | 'saga';

export interface SagaWorkersOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueues: SagaTaskQueues;
  /** Which workers to create; one process may host all of them for local use. */
  roles: readonly WorkerRole[];
  /** Needed for every service role (built with createServiceActivities). */
  activities?: ServiceActivities;
  /** A prebuilt bundle (bundleWorkflowCode), so tests and benchmarks bundle once. */
  workflowBundle?: WorkflowBundleOption;
  maxConcurrentActivityTaskExecutions?: number;
  /** Where the orchestrator records saga outcomes and compensations (through workflow sinks). */
  metrics?: Metrics;
}

/**
 * One worker per role: the orchestrator runs only workflow code on the saga queue, and each service
 * runs only its own activities on its own queue, so services scale and deploy independently.
 */
export async function createSagaWorkers(opts: SagaWorkersOptions): Promise<Worker[]> {
  const common = { connection: opts.connection, namespace: opts.namespace ?? 'default' };
  const workers: Worker[] = [];
  for (const role of opts.roles) {
    if (role === 'saga') {
      workers.push(
        await Worker.create({
          ...common,
          taskQueue: opts.taskQueues.saga,
          sinks: sagaMetricsSinks(opts.metrics),
          ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
        }),
      );
      continue;
    }
    if (!opts.activities) throw new Error(`the ${role} worker needs its activities`);
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: opts.taskQueues[role],
        activities: opts.activities[role],
        maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions ?? 50,
      }),
    );
  }
  return workers;
}

/** Runs workers until `fn` settles, then shuts them all down (as Worker.runUntil does for one). */
export async function runWorkersUntil<T>(workers: Worker[], fn: () => Promise<T>): Promise<T> {
  const [first, ...rest] = workers;
  if (!first) return fn();
  return runWorkersUntil(rest, () => first.runUntil(fn));
}
