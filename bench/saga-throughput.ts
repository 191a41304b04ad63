/**
 * Sagas per second on this machine, started straight from a Temporal client (no Kafka), against the
 * engine's floor: a bare workflow with the same activities as no-ops, same queues, same server, same
 * run. Usage: npx tsx bench/saga-throughput.ts [sagas=200] [rounds=2]
 */
import os from 'node:os';
import path from 'node:path';

import { Client } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';

import { startRoles } from '../src/app/roles';
import { installTemporalRuntime } from '../src/app/run-process';
import { connectTemporal, connectTemporalWorker } from '../src/config/clients';
import { loadSettings, WORKER_ROLES } from '../src/config/settings';
import { createLogger } from '../src/observability/logger';
import { createMetrics } from '../src/observability/metrics';
import { initTracing, temporalTracingPlugin } from '../src/observability/tracing';
import { buildPlan } from '../src/provision/plan';
import { runProvision } from '../src/provision/run';
import { provisionSettingsFrom } from '../src/provision/settings';
import { SERVICE_NAMES } from '../src/services/registry';
import type { OrderSagaInput } from '../src/shared/saga-contract';
import { ORDER_SAGA_WORKFLOW_TYPE, orderWorkflowId, taskQueuesFor } from '../src/shared/saga-contract';

const SAGAS = Number(process.argv[2] ?? 200);
const ROUNDS = Number(process.argv[3] ?? 2);
const WARM_UP = Math.min(20, SAGAS);
const tag = `bench_${Date.now().toString(36)}`;

interface Measurement {
  label: string;
  seconds: number;
  perSecond: number;
}

/** Times from the first start to the last result. */
async function timeAll(label: string, count: number, runAll: () => Promise<unknown>): Promise<Measurement> {
  const t0 = performance.now();
  await runAll();
  const seconds = (performance.now() - t0) / 1000;
  return { label, seconds, perSecond: count / seconds };
}

async function main(): Promise<void> {
  // Every step appends its event as in production; under a scope of its own, whose topics no
  // connector publishes, so a run never floods the real domain topics. Settings are passed in,
  // as a deployment's processes parse them: the bench is a developer tool, so a shell holding
  // every credential is fine (each part still reads only its own section).
  const env = { ...process.env, KTS_SCOPE: `bench-saga-${Date.now()}`, LOG_LEVEL: 'error' };
  const provision = provisionSettingsFrom(loadSettings(['provision'], env, { refuseForeignCredentials: false }));
  const settings = loadSettings(WORKER_ROLES, env, { refuseForeignCredentials: false });
  const log = createLogger('bench-saga-throughput', undefined, settings.common.logLevel);
  installTemporalRuntime(log, settings.common.logLevel);
  // What `npm run provision` does for this scope, less the connector: schemas, subjects, search attributes.
  await runProvision(
    buildPlan({ ...provision.plan, cdc: null, include: ['migrations', 'login-role', 'subject', 'search-attributes'] }),
    provision.targets,
  );
  // Both sides traced or not alike, as the settings say (KTS_TEMPORAL_TRACING; untraced without an OTLP
  // endpoint), so the comparison stays the saga's own cost over the engine's floor.
  const tracing = initTracing('bench-saga-throughput');
  const plugins = settings.common.temporalTracing ? [temporalTracingPlugin(tracing)] : [];
  // The orchestrator and the four service workers, started as their processes start them.
  const running = await startRoles(settings, WORKER_ROLES, {
    logger: log,
    metrics: createMetrics('bench-saga-throughput'),
    tracing,
  });
  const bareBundle = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'saga-baseline-workflow.ts'),
    logger: new DefaultLogger('ERROR'),
    plugins,
  });
  const connection = await connectTemporal(settings.temporal);
  const client = new Client({ connection, namespace: settings.temporal.namespace });
  const workerConnection = await connectTemporalWorker(settings.temporal);

  const sagaQueues = settings.common.names.taskQueues;
  const bareQueues = taskQueuesFor(`${tag}_bare`);
  const namespace = settings.temporal.namespace;
  const noop = { noop: (step: string) => Promise.resolve(step) };
  const bareWorkers: Worker[] = [
    await Worker.create({
      connection: workerConnection,
      namespace,
      taskQueue: bareQueues.saga,
      workflowBundle: bareBundle,
      plugins,
    }),
    ...(await Promise.all(
      SERVICE_NAMES.map((s) =>
        Worker.create({ connection: workerConnection, namespace, taskQueue: bareQueues[s], activities: noop, plugins }),
      ),
    )),
  ];
  const bareRuns = bareWorkers.map((w) => w.run());
  const inventory = running.pools.inventory;
  if (!inventory) throw new Error('the inventory worker opened no pool');

  let round = 0;
  const sku = `${tag}_sku`;
  await inventory.query('INSERT INTO inventory.stock (sku, available) VALUES ($1, $2)', [sku, SAGAS * ROUNDS * 2]);
  const runSagas = (count = SAGAS) => {
    round += 1;
    return timeAll('orderSaga', count, () =>
      Promise.all(
        Array.from({ length: count }, async (_, i) => {
          const orderId = `${tag}_r${round}_${i}`;
          const input: OrderSagaInput = {
            order: {
              orderId,
              customerId: `cust_${i}`,
              currency: 'EUR',
              paymentToken: 'tok_visa',
              items: [{ sku, quantity: 1, unitPriceMinor: 1_000 }],
            },
            taskQueues: sagaQueues,
          };
          const handle = await client.workflow.start(ORDER_SAGA_WORKFLOW_TYPE, {
            taskQueue: sagaQueues.saga,
            workflowId: orderWorkflowId(orderId),
            args: [input],
          });
          return handle.result() as Promise<unknown>;
        }),
      ),
    );
  };
  const runBare = (count = SAGAS) => {
    round += 1;
    return timeAll('bare workflow, same no-op activities', count, () =>
      Promise.all(
        Array.from({ length: count }, async (_, i) => {
          const handle = await client.workflow.start('bareSaga', {
            taskQueue: bareQueues.saga,
            workflowId: `${tag}_bare_r${round}_${i}`,
            args: [bareQueues],
          });
          return handle.result() as Promise<unknown>;
        }),
      ),
    );
  };

  const measurements: Measurement[] = [];
  try {
    // Warm-up (bundles loaded, pools filled, workflow caches primed), then alternate the two kinds.
    await runBare(WARM_UP);
    await runSagas(WARM_UP);
    for (let r = 0; r < ROUNDS; r++) {
      measurements.push(await runBare());
      measurements.push(await runSagas());
    }
  } finally {
    for (const w of bareWorkers) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.all(bareRuns);
    await running.stop();
  }

  const best = (label: string) =>
    measurements.filter((m) => m.label === label).reduce((a, b) => (a.perSecond >= b.perSecond ? a : b));
  const saga = best('orderSaga');
  const bare = best('bare workflow, same no-op activities');
  process.stdout.write(
    [
      `machine: ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
      `${SAGAS} workflows per round, ${ROUNDS} rounds each, all started at once; best round shown`,
      ...measurements.map((m) => `  ${m.label}: ${m.seconds.toFixed(1)} s, ${m.perSecond.toFixed(1)}/s`),
      `orderSaga: ${saga.perSecond.toFixed(1)} sagas/s`,
      `bare workflow: ${bare.perSecond.toFixed(1)} workflows/s`,
      `ratio (saga / bare): ${(saga.perSecond / bare.perSecond).toFixed(2)}`,
    ].join('\n') + '\n',
  );
  await connection.close();
  await workerConnection.close();
  await tracing.shutdown();
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
