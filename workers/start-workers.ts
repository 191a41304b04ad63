import { NativeConnection } from '@temporalio/worker';
import { z } from 'zod';

import { createServiceActivities } from '../activities';
import { formatEnvIssues, loadStackConfig, stackEndpoints } from '../src/config/stack-config';
import { loadDbConfig } from '../src/db/db-config';
import { closeServicePools, createServicePools } from '../src/db/pools';
import { outboxWriterFromEnv } from '../src/outbox/outbox-config';
import { SimulatedCardGateway, loadGatewayBehaviour } from '../src/services/card-gateway';
import { createLogger } from '../src/observability/logger';
import { initTracing } from '../src/observability/tracing';
import { logChannel } from '../src/services/notification-channel';
import { startMetrics } from '../src/observability/metrics';
import { taskQueuesFor } from '../src/shared/saga-contract';
import { verifyRoles } from '../src/provision/verify';
import type { WorkerRole } from './saga-workers';
import { createSagaWorkers } from './saga-workers';
import { loadWorkerDeploymentSettings, sagaWorkerDeploymentOptions } from '../src/deploy/worker-deployment';
import { printHelpIfAsked } from '../src/cli/help';

const workerEnvSchema = z.object({
  /** Prefix of every task queue; empty in production, unique per test run so runs never mix. */
  KTS_TASK_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]*$/)
    .default(''),
  KTS_TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

/**
 * Entry point shared by the files in workers/: parses settings once (failing fast), verifies as each
 * service's own role what provisioning made (one line naming what to run when something is missing),
 * then runs the given workers until SIGINT/SIGTERM.
 */
export async function startWorkers(roles: readonly WorkerRole[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const parsed = workerEnvSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid worker settings: ${formatEnvIssues(parsed.error)}`);
  const e = parsed.data;
  // One service name per deployable: a single-role process is that service's worker.
  const service = roles.length === 1 ? `kts-${roles[0]}-worker` : 'kts-workers';
  const tracing = initTracing(service);
  const logger = createLogger(service, undefined, e.LOG_LEVEL);
  const dbConfig = loadDbConfig(env);
  const gatewayBehaviour = loadGatewayBehaviour(env);
  const deployment = loadWorkerDeploymentSettings(env);
  const { temporalAddress, registryUrl } = stackEndpoints(loadStackConfig(env));
  // Before anything slow, so a taken port fails the start at once. A single-role process is that
  // service's worker and has its own default port, so the five can run side by side.
  const [only] = roles;
  const served = await startMetrics(roles.length === 1 && only ? `worker-${only}` : 'workers', env);

  await verifyRoles(roles, {
    schemaUrls: Object.fromEntries(Object.values(dbConfig.owners).map((o) => [o.schema, o.url])),
    registryUrl,
    temporal: { address: temporalAddress, namespace: e.KTS_TEMPORAL_NAMESPACE },
  });
  const pools = createServicePools(dbConfig);
  const activities = createServiceActivities({
    pools,
    gateway: new SimulatedCardGateway(pools.card_gateway, gatewayBehaviour),
    channel: logChannel(logger),
    outbox: outboxWriterFromEnv(env),
  });
  const connection = await NativeConnection.connect({ address: temporalAddress });
  const taskQueues = taskQueuesFor(e.KTS_TASK_QUEUE_PREFIX);
  try {
    const workers = await createSagaWorkers({
      connection,
      namespace: e.KTS_TEMPORAL_NAMESPACE,
      taskQueues,
      roles,
      activities,
      metrics: served.metrics,
      tracing,
      logger,
      sagaDeployment: sagaWorkerDeploymentOptions(deployment),
    });
    const version = deployment.versioning ? deployment.version : 'unversioned';
    logger.info({ roles, taskQueues, metrics: served.url, sagaVersion: version }, 'workers running');
    // Worker.run resolves after the SDK's own SIGINT/SIGTERM handling has drained the worker.
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    await connection.close();
    await closeServicePools(pools);
    await served.close();
  }
}

/** Runs startWorkers as a process's main function, exiting non-zero with a readable message on error. */
export function main(roles: readonly WorkerRole[]): void {
  printHelpIfAsked(
    `npm run worker (roles: ${roles.join(', ')})`,
    'Temporal workers: the orchestrator runs orderSaga on its task queue; each service runs its activities on its own.',
    [
      'KTS_TASK_QUEUE_PREFIX, KTS_TEMPORAL_NAMESPACE, LOG_LEVEL',
      'KTS_GATEWAY_DECLINE_RATE, KTS_GATEWAY_TRANSIENT_ERROR_RATE, KTS_GATEWAY_LATENCY_MIN_MS, KTS_GATEWAY_LATENCY_MAX_MS',
      'KTS_OUTBOX_TOPIC_PREFIX, KTS_METRICS_PORT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
      'KTS_WORKER_VERSIONING (on|off), KTS_WORKER_DEPLOYMENT_NAME, KTS_WORKER_BUILD_ID (see README: Deploying a new saga build)',
      'KTS_PG_PORT, KTS_TEMPORAL_PORT, KTS_REGISTRY_PORT (see src/config/stack-config.ts)',
    ],
  );
  startWorkers(roles).catch((err: unknown) => {
    // A missing prerequisite is one line saying what to run; anything else keeps its stack.
    const e = err as { type?: string; stack?: string; message?: string };
    const text = e.type === 'NotProvisioned' ? e.message : (e.stack ?? e.message ?? String(err));
    process.stderr.write(`worker failed: ${text}\n`);
    process.exit(1);
  });
}
