/**
 * Sagas per second on this machine, started straight from a Temporal client (no Kafka), against the
 * engine's floor: a bare workflow with the same activities as no-ops, same queues, same server, same
 * run. Usage: npx tsx bench/saga-throughput.ts [sagas=200] [rounds=2]
 */
import os from 'node:os';
import path from 'node:path';

import { Client, Connection } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { DefaultLogger, NativeConnection, Runtime, Worker as TemporalWorker } from '@temporalio/worker';
import pino from 'pino';

import { createServiceActivities } from '../activities';
import { ROLES, loadSettings } from '../src/config/settings';
import { dbConfigFromSettings } from '../src/db/db-config';
import { migrateAll } from '../src/db/migrate';
import { closeServicePools, createServicePools } from '../src/db/pools';
import { outboxWriterFor } from '../src/outbox/outbox-config';
import { SimulatedCardGateway } from '../src/services/card-gateway';
import { initTracing, temporalTracingPlugin } from '../src/observability/tracing';
import { logChannel } from '../src/services/notification-channel';
import type { OrderSagaInput } from '../src/shared/saga-contract';
import { SERVICES, orderWorkflowId, taskQueuesFor } from '../src/shared/saga-contract';
import { orderSaga } from '../workflows';
import { bundleSagaWorkflows, createSagaWorkers, runWorkersUntil } from '../workers/saga-workers';
import { bareSaga } from './saga-baseline-workflow';

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
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  // Every step appends its event as in production; under a scope of its own, whose topics no
  // connector publishes, so a run never floods the real domain topics.
  const settings = loadSettings(ROLES, { ...process.env, KTS_SCOPE: `bench-saga-${Date.now()}` });
  const temporalAddress = settings.temporal.connection.address;
  const dbConfig = dbConfigFromSettings(settings.roles.provision, settings.postgres);
  await migrateAll(dbConfig);
  const pools = createServicePools(dbConfig, 10);
  const activities = createServiceActivities({
    pools,
    gateway: new SimulatedCardGateway(pools.card_gateway, {
      declineRate: 0,
      transientErrorRate: 0,
      latencyMs: { min: 0, max: 0 },
    }),
    channel: logChannel(pino({ level: 'warn' })),
    outbox: outboxWriterFor(settings),
  });
  // Both sides traced like production (interceptors in the bundle, plugin on the workers), so the
  // comparison stays the saga's own cost over the engine's floor.
  const tracing = initTracing('bench-saga-throughput');
  const sagaBundle = await bundleSagaWorkflows({ logger: new DefaultLogger('ERROR'), tracing });
  const bareBundle = await bundleSagaWorkflows({
    workflowsPath: path.join(__dirname, 'saga-baseline-workflow.ts'),
    logger: new DefaultLogger('ERROR'),
    tracing,
  });
  const plugins = [temporalTracingPlugin(tracing)];
  const connection = await Connection.connect({ address: temporalAddress });
  const client = new Client({ connection });
  const workerConnection = await NativeConnection.connect({ address: temporalAddress });

  const sagaQueues = taskQueuesFor(`${tag}_saga`);
  const bareQueues = taskQueuesFor(`${tag}_bare`);
  const sagaWorkers = await createSagaWorkers({
    connection: workerConnection,
    taskQueues: sagaQueues,
    roles: ['saga', ...SERVICES],
    activities,
    workflowBundle: sagaBundle,
  });
  const noop = { noop: (step: string) => Promise.resolve(step) };
  const bareWorkers: Worker[] = [
    await TemporalWorker.create({
      connection: workerConnection,
      taskQueue: bareQueues.saga,
      workflowBundle: bareBundle,
      plugins,
    }),
    ...(await Promise.all(
      SERVICES.map((s) =>
        TemporalWorker.create({ connection: workerConnection, taskQueue: bareQueues[s], activities: noop, plugins }),
      ),
    )),
  ];

  let round = 0;
  const sku = `${tag}_sku`;
  await pools.inventory.query('INSERT INTO inventory.stock (sku, available) VALUES ($1, $2)', [
    sku,
    SAGAS * ROUNDS * 2,
  ]);
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
          const handle = await client.workflow.start(orderSaga, {
            taskQueue: sagaQueues.saga,
            workflowId: orderWorkflowId(orderId),
            args: [input],
          });
          return handle.result();
        }),
      ),
    );
  };
  const runBare = (count = SAGAS) => {
    round += 1;
    return timeAll('bare workflow, same no-op activities', count, () =>
      Promise.all(
        Array.from({ length: count }, async (_, i) => {
          const handle = await client.workflow.start(bareSaga, {
            taskQueue: bareQueues.saga,
            workflowId: `${tag}_bare_r${round}_${i}`,
            args: [bareQueues],
          });
          return handle.result();
        }),
      ),
    );
  };

  const measurements: Measurement[] = [];
  await runWorkersUntil([...sagaWorkers, ...bareWorkers], async () => {
    // Warm-up (bundles loaded, pools filled, workflow caches primed), then alternate the two kinds.
    await runBare(WARM_UP);
    await runSagas(WARM_UP);
    for (let r = 0; r < ROUNDS; r++) {
      measurements.push(await runBare());
      measurements.push(await runSagas());
    }
  });

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
  await closeServicePools(pools);
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
