/**
 * What each piece of our saga's observability costs, as ratios measured in one run on one fresh
 * private Temporal dev server (nothing else loads it): the lean reference saga (lean-saga-workflow.ts,
 * same six steps and the same kinds of PostgreSQL writes, nothing else) against orderSaga with
 * everything on, and orderSaga with each piece switched off on its own (worker options, see
 * WorkerObservability). Variants alternate in windows (the order rotates every round); each window
 * starts only that variant's workers, warms them up, then times one burst of sagas started at once.
 * A round's ratios divide by the lean saga's rate of the same round: the median and min–max over
 * rounds are reported, with the load average before and after.
 *
 * Usage: npx tsx bench/saga-overhead.ts [sagas=150] [rounds=5] [--quick]
 * --quick: 20 sagas, 1 round (proves the bench works; its ratios are noise).
 */
import os from 'node:os';
import path from 'node:path';

import { Client } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import type pg from 'pg';

import type { RoleContext, RunningRoles } from '../src/app/roles';
import { bundleSagaWorkflows, startRoles } from '../src/app/roles';
import { installTemporalRuntime } from '../src/app/run-process';
import { connectTemporal, connectTemporalWorker, createPgPool } from '../src/config/clients';
import { loadSettings, WORKER_ROLES } from '../src/config/settings';
import { createLogger } from '../src/observability/logger';
import { createMetrics } from '../src/observability/metrics';
import { initTracing } from '../src/observability/tracing';
import { buildPlan } from '../src/provision/plan';
import { runProvision } from '../src/provision/run';
import { provisionSettingsFrom } from '../src/provision/settings';
import type { OrderSagaInput } from '../src/shared/saga-contract';
import { ORDER_SAGA_WORKFLOW_TYPE, orderWorkflowId, taskQueuesFor } from '../src/shared/saga-contract';
import { PrivateTemporal } from '../src/stack/private-temporal';
import type { LeanOrder, LeanPools } from './lean-saga-activities';
import { createLeanSagaActivities } from './lean-saga-activities';
import { median } from './pipeline-report';

const QUICK = process.argv.includes('--quick');
const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const SAGAS = QUICK ? 20 : Number(positional[0] ?? 150);
const ROUNDS = QUICK ? 1 : Number(positional[1] ?? 5);
const WARM_UP = Math.min(10, SAGAS);
const tag = `bench-ovh-${Date.now().toString(36)}`;

/** orderSaga's variants: everything on, then each piece off on its own. */
const OURS: {
  name: string;
  observability: NonNullable<RoleContext['observability']>;
  /** The prebuilt workflow bundle it runs, which must match its tracing (see bundleSagaWorkflows). */
  bundle: 'traced' | 'untraced' | 'no-search-attributes';
}[] = [
  { name: 'ours, everything on', observability: {}, bundle: 'traced' },
  { name: 'ours, no tracing', observability: { tracing: false }, bundle: 'untraced' },
  { name: 'ours, no metrics sinks', observability: { metricsSinks: false }, bundle: 'traced' },
  { name: 'ours, no activity logging', observability: { activityLogging: false }, bundle: 'traced' },
  // The same saga that never upserts search attributes, traced.
  { name: 'ours, no search attributes', observability: {}, bundle: 'no-search-attributes' },
];
const LEAN = 'lean saga';
const VARIANTS = [LEAN, ...OURS.map((v) => v.name)];

const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

async function main(): Promise<void> {
  const loadBefore = load();
  const temporal = await PrivateTemporal.create();
  await temporal.start();
  const baseEnv = {
    ...process.env,
    KTS_TEMPORAL_PORT: String(temporal.port),
    KTS_TEMPORAL_UI_PORT: String(temporal.uiPort),
    // Production's level: the activity logging interceptor then writes its line (to /dev/null here).
    LOG_LEVEL: 'info',
    // "Everything on" traces, as a deployment with an OTLP endpoint does (no endpoint here: spans stop in-process).
    KTS_TEMPORAL_TRACING: 'on',
  };
  const envFor = (variant: number) => ({ ...baseEnv, KTS_SCOPE: `${tag}-v${variant}` });
  const settingsFor = (variant: number) =>
    loadSettings(WORKER_ROLES, envFor(variant), { refuseForeignCredentials: false });
  const settings = settingsFor(0);
  const quiet = createLogger('bench-saga-overhead', undefined, 'error');
  installTemporalRuntime(quiet, 'error');
  // Migrations (shared PostgreSQL) and search attributes (the private server), as provisioning does.
  const provision = provisionSettingsFrom(loadSettings(['provision'], envFor(0), { refuseForeignCredentials: false }));
  await runProvision(
    buildPlan({ ...provision.plan, cdc: null, include: ['migrations', 'login-role', 'subject', 'search-attributes'] }),
    provision.targets,
  );
  const tracing = initTracing('bench-saga-overhead');
  const devNull = createLogger('bench-saga-overhead', (await import('pino')).default.destination(os.devNull));
  const metrics = createMetrics('bench-saga-overhead');
  const [traced, untraced, noSearchAttributes, leanBundle] = await Promise.all([
    bundleSagaWorkflows({ tracing, logger: new DefaultLogger('ERROR') }),
    bundleSagaWorkflows({ traced: false, logger: new DefaultLogger('ERROR') }),
    bundleSagaWorkflows({
      workflowsPath: path.join(__dirname, 'saga-without-search-attributes-workflow.ts'),
      tracing,
      logger: new DefaultLogger('ERROR'),
    }),
    bundleWorkflowCode({
      workflowsPath: path.join(__dirname, 'lean-saga-workflow.ts'),
      logger: new DefaultLogger('ERROR'),
    }),
  ]);
  const bundles = { traced, untraced, 'no-search-attributes': noSearchAttributes };

  const connection = await connectTemporal(settings.temporal);
  const client = new Client({ connection, namespace: settings.temporal.namespace });
  const { orders, inventory, payments, notifications } = settings.roles;
  const pool = (url: string, name: string) =>
    createPgPool(url, settings.postgres, { applicationName: `kts-bench-${name}` });
  const leanPools: LeanPools = {
    orders: pool(orders.pgUrl, 'orders'),
    inventory: pool(inventory.pgUrl, 'inventory'),
    payments: pool(payments.pgUrl, 'payments'),
    notifications: pool(notifications.pgUrl, 'notifications'),
  };
  const sku = `${tag}_sku`;
  await leanPools.inventory.query('INSERT INTO inventory.stock (sku, available) VALUES ($1, $2)', [
    sku,
    (SAGAS + WARM_UP) * ROUNDS * VARIANTS.length * 2,
  ]);

  let burst = 0;
  /** The workflow id of the last timed burst's first saga, whose history the first round tallies. */
  let sampleWorkflowId = '';
  /** Starts `count` workflows at once and waits for every result; returns sagas per second. */
  const timed = async (
    count: number,
    start: (i: number, id: string) => Promise<{ workflowId: string; result(): Promise<unknown> }>,
  ) => {
    burst += 1;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const handle = await start(i, `${tag}_b${burst}_${i}`);
        if (i === 0) sampleWorkflowId = handle.workflowId;
        return handle.result();
      }),
    );
    return count / ((performance.now() - t0) / 1000);
  };

  /** One window of a variant: its workers only, a warm-up, then the timed burst. */
  const window = async (variant: number): Promise<number> => {
    const name = VARIANTS[variant]!;
    if (name === LEAN) {
      const queues = taskQueuesFor(`${tag}_lean`);
      const workerConnection = await connectTemporalWorker(settings.temporal);
      const activities = createLeanSagaActivities(leanPools, tag);
      const common = { connection: workerConnection, namespace: settings.temporal.namespace };
      const workers = [
        await Worker.create({ ...common, taskQueue: queues.saga, workflowBundle: leanBundle }),
        ...(await Promise.all(
          (['orders', 'inventory', 'payments', 'notifications'] as const).map((s) =>
            Worker.create({ ...common, taskQueue: queues[s], activities, maxConcurrentActivityTaskExecutions: 50 }),
          ),
        )),
      ];
      const runs = workers.map((w) => w.run());
      const start = (i: number, id: string) => {
        const order: LeanOrder = {
          orderId: id,
          customerId: `cust_${i}`,
          currency: 'EUR',
          sku,
          quantity: 1,
          unitPriceMinor: 1_000,
        };
        return client.workflow.start('leanSaga', {
          taskQueue: queues.saga,
          workflowId: `order-${id}`,
          args: [queues, order],
        });
      };
      try {
        await timed(WARM_UP, start);
        return await timed(SAGAS, start);
      } finally {
        for (const w of workers) w.shutdown();
        await Promise.all(runs);
        await workerConnection.close();
      }
    }
    const ours = OURS[variant - 1]!;
    const s = settingsFor(variant);
    const running: RunningRoles = await startRoles(s, WORKER_ROLES, {
      logger: devNull,
      metrics,
      tracing,
      observability: ours.observability,
      workflowBundle: bundles[ours.bundle],
    });
    const queues = s.common.names.taskQueues;
    const start = (i: number, id: string) => {
      const input: OrderSagaInput = {
        order: {
          orderId: id,
          customerId: `cust_${i}`,
          currency: 'EUR',
          paymentToken: 'tok_visa',
          items: [{ sku, quantity: 1, unitPriceMinor: 1_000 }],
        },
        taskQueues: queues,
      };
      return client.workflow.start(ORDER_SAGA_WORKFLOW_TYPE, {
        taskQueue: queues.saga,
        workflowId: orderWorkflowId(id),
        args: [input],
      });
    };
    try {
      await timed(WARM_UP, start);
      return await timed(SAGAS, start);
    } finally {
      await running.stop();
    }
  };

  const rates: number[][] = VARIANTS.map(() => []);
  const histories: (HistoryTally | undefined)[] = VARIANTS.map(() => undefined);
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate the order every round so no variant always runs first (or right after the lean one).
      for (let k = 0; k < VARIANTS.length; k++) {
        const v = (k + r) % VARIANTS.length;
        const rate = await window(v);
        rates[v]!.push(rate);
        histories[v] ??= await tallyHistory(client, sampleWorkflowId);
        process.stderr.write(`round ${r + 1}: ${VARIANTS[v]}: ${rate.toFixed(1)}/s (load ${load()})\n`);
      }
    }
  } finally {
    await Promise.all(Object.values(leanPools).map((p: pg.Pool) => p.end()));
    await connection.close();
    await tracing.shutdown();
    await temporal.stop();
  }

  const ratio = (v: number, base: number) => rates[v]!.map((x, r) => x / rates[base]![r]!);
  const fmt = (xs: number[]) =>
    `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
  const lines = [
    `machine: ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; ` +
      `load before ${loadBefore}, after ${load()}`,
    `one private dev server; ${SAGAS} sagas per window (after ${WARM_UP} warm-up), ${ROUNDS} round(s), ` +
      `variants alternating; median (min–max) over rounds`,
    ...VARIANTS.map(
      (name, v) =>
        `  ${name.padEnd(28)} ${median(rates[v]!).toFixed(1).padStart(6)}/s  × lean ${fmt(ratio(v, 0))}` +
        (v > 1 ? `  × everything on ${fmt(ratio(v, 1))}` : ''),
    ),
    `target: everything on ≥ 0.95× lean`,
    `history of one confirmed saga per variant (the same for every saga of a variant: no timer, no retry):`,
    ...VARIANTS.map((name, v) => `  ${name.padEnd(28)} ${formatTally(histories[v])}`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

/** What one saga's history holds: the engine's work per saga, free of timing noise. */
interface HistoryTally {
  events: number;
  workflowTasks: number;
  activities: number;
  markers: number;
  upserts: number;
}

async function tallyHistory(client: Client, workflowId: string): Promise<HistoryTally> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const count = (pick: (e: (typeof events)[number]) => unknown) => events.filter((e) => pick(e) != null).length;
  return {
    events: events.length,
    workflowTasks: count((e) => e.workflowTaskCompletedEventAttributes),
    activities: count((e) => e.activityTaskScheduledEventAttributes),
    markers: count((e) => e.markerRecordedEventAttributes),
    upserts: count((e) => e.upsertWorkflowSearchAttributesEventAttributes),
  };
}

function formatTally(t: HistoryTally | undefined): string {
  if (!t) return 'not fetched';
  return (
    `${t.events} events, ${t.workflowTasks} workflow tasks, ${t.activities} activities, ${t.markers} markers, ` +
    `${t.upserts} upserts`
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
