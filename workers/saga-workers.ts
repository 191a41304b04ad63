import path from 'node:path';

import type {
  ActivityInterceptorsFactory,
  Logger as SdkLogger,
  NativeConnection,
  WorkerDeploymentOptions,
  WorkerOptions,
  WorkflowBundleOption,
  WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';

import { activityLoggingInterceptor } from '../src/observability/activity-logging';
import type { Logger } from '../src/observability/logger';
import { createLogger } from '../src/observability/logger';
import type { Metrics } from '../src/observability/metrics';
import type { Tracing } from '../src/observability/tracing';
import { initTracing, temporalTracingPlugin } from '../src/observability/tracing';
import type { ServiceActivities } from '../src/services/all-activities';
import type { ServiceName } from '../src/services/registry';
import type { SagaTaskQueues } from '../src/shared/saga-contract';
import { sagaMetricsSinks } from './saga-metrics-sinks';

/** The workflow code the orchestrator runs; the worker bundles it unless given a prebuilt bundle. */
export const WORKFLOWS_PATH = path.join(__dirname, '..', 'workflows', 'index.ts');

export type WorkerRole = ServiceName | 'saga';

/**
 * Which observability pieces the workers carry; every one is on unless switched off. The saga
 * overhead benchmark (bench/saga-overhead.ts) switches each off on its own to measure what it costs.
 */
export interface WorkerObservability {
  /** Temporal's OpenTelemetry interceptors (workflow, activity) through the tracing plugin. */
  tracing?: boolean;
  /**
   * What the orchestrator's saga metrics sinks record (outcomes, compensations, event-to-complete
   * latency); off, the workflow's sink calls still reach the worker and are dropped there.
   */
  metricsSinks?: boolean;
  /** The correlated log line per activity attempt (src/observability/activity-logging.ts). */
  activityLogging?: boolean;
}

export interface SagaWorkersOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueues: SagaTaskQueues;
  /** Which workers to create; one process may host all of them for local use. */
  roles: readonly WorkerRole[];
  /** Needed for every service role in `roles` (each built from that service's own pool). */
  activities?: Partial<ServiceActivities>;
  /** A prebuilt bundle (bundleSagaWorkflows), so tests and benchmarks bundle once. */
  workflowBundle?: WorkflowBundleOption;
  maxConcurrentActivityTaskExecutions?: number;
  /** Where the orchestrator records saga outcomes and compensations (through workflow sinks). */
  metrics?: Metrics;
  /** Where workflow spans go; defaults to the process's installation (see initTracing). */
  tracing?: Tracing;
  /**
   * Activity log lines (one per attempt, with the order's correlation fields). Entry points pass
   * theirs; embedded use (tests, benchmarks) stays quiet without one.
   */
  logger?: Logger;
  /**
   * Worker Deployment Versioning of the orchestrator (src/deploy/worker-deployment.ts); unversioned
   * when absent. Service workers stay unversioned: they run no workflow code.
   */
  sagaDeployment?: WorkerDeploymentOptions;
  /**
   * Extra activity interceptors of the service workers, e.g. a test's fault injection around one
   * real activity: the workers, activities and settings stay the ones the processes run.
   */
  activityInterceptors?: ActivityInterceptorsFactory[];
  /** Observability pieces to switch off; all on by default (see {@link WorkerObservability}). */
  observability?: WorkerObservability;
}

/** The tracing plugin of this process; installs tracing under a generic name if no entry point did. */
function sagaTracingPlugin(tracing?: Tracing) {
  return temporalTracingPlugin(tracing ?? initTracing('kts-workers'));
}

/** Whether each bundle built by bundleSagaWorkflows carries the OpenTelemetry workflow interceptors. */
const tracedBundles = new WeakMap<object, boolean>();

/**
 * Bundles the orchestrator's workflow code once, for tests and benchmarks. A prebuilt bundle carries
 * the OpenTelemetry workflow interceptors itself or not at all (a worker adds them only when it
 * bundles), so it must match the worker that runs it: `traced` (default true) for workers that trace,
 * false for workers with `observability.tracing: false`. createSagaWorkers refuses a mismatch.
 */
export async function bundleSagaWorkflows(
  options: { workflowsPath?: string; logger?: SdkLogger; tracing?: Tracing; traced?: boolean } = {},
): Promise<WorkflowBundleWithSourceMap> {
  const traced = options.traced !== false;
  const bundle = await bundleWorkflowCode({
    workflowsPath: options.workflowsPath ?? WORKFLOWS_PATH,
    logger: options.logger,
    plugins: traced ? [sagaTracingPlugin(options.tracing)] : [],
  });
  tracedBundles.set(bundle, traced);
  return bundle;
}

/**
 * A traced bundle under an untraced worker calls a span sink nobody registered (an error logged per
 * span); an untraced one under a traced worker silently loses the workflow's spans. Either is a wiring
 * mistake, so it fails here, at start-up, instead.
 */
function checkBundleTracing(bundle: WorkflowBundleOption | undefined, workerTraces: boolean): void {
  const traced = bundle ? tracedBundles.get(bundle) : undefined;
  if (traced === undefined || traced === workerTraces) return;
  throw new Error(
    `the prebuilt saga bundle was built ${traced ? 'with' : 'without'} tracing but the saga worker ` +
      `${workerTraces ? 'traces' : 'does not trace'}: build it with bundleSagaWorkflows({ traced: ${workerTraces} })`,
  );
}

/**
 * Worker options with tracing: Temporal's OpenTelemetry interceptors first, then the correlated
 * activity log line inside their span (plugins would append after ours, i.e. outside the span).
 */
function traced(
  options: WorkerOptions,
  tracing: Tracing | undefined,
  logger: Logger,
  observability: WorkerObservability = {},
): WorkerOptions {
  const configured = observability.tracing === false ? options : sagaTracingPlugin(tracing).configureWorker(options);
  if (observability.activityLogging === false) return configured;
  const interceptors = configured.interceptors ?? {};
  return {
    ...configured,
    interceptors: { ...interceptors, activity: [...(interceptors.activity ?? []), activityLoggingInterceptor(logger)] },
  };
}

/**
 * One worker per role: the orchestrator runs only workflow code on the saga queue, and each service
 * runs only its own activities on its own queue, so services scale and deploy independently.
 */
export async function createSagaWorkers(opts: SagaWorkersOptions): Promise<Worker[]> {
  const common = { connection: opts.connection, namespace: opts.namespace ?? 'default' };
  const workers: Worker[] = [];
  // Embedded use (tests, benchmarks) stays quiet unless the caller passes a logger.
  const logger = opts.logger ?? createLogger('kts-workers', undefined, 'silent');
  for (const role of opts.roles) {
    if (role === 'saga') {
      checkBundleTracing(opts.workflowBundle, opts.observability?.tracing !== false);
      // The saga upserts its search attributes; provisioning registers them and the saga role verifies
      // them before it starts (src/provision/verify.ts): a worker never changes the namespace itself.
      workers.push(
        await Worker.create(
          traced(
            {
              ...common,
              taskQueue: opts.taskQueues.saga,
              // Off, the sinks stay registered but record nothing: the workflow still calls them, and a
              // call to a missing sink would log an error per saga.
              sinks: sagaMetricsSinks(opts.observability?.metricsSinks === false ? undefined : opts.metrics),
              ...(opts.sagaDeployment ? { workerDeploymentOptions: opts.sagaDeployment } : {}),
              ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
            },
            opts.tracing,
            logger,
            opts.observability,
          ),
        ),
      );
      continue;
    }
    const activities = opts.activities?.[role];
    if (!activities) throw new Error(`the ${role} worker needs its activities`);
    workers.push(
      await Worker.create(
        traced(
          {
            ...common,
            taskQueue: opts.taskQueues[role],
            activities,
            maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions ?? 50,
            ...(opts.activityInterceptors ? { interceptors: { activity: opts.activityInterceptors } } : {}),
          },
          opts.tracing,
          logger,
          opts.observability,
        ),
      ),
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
