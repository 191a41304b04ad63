/**
 * Failure drill (issue #11): a rolling deploy of the saga worker with 100 sagas in flight.
 *
 * The old build is the saga as it was before v2 (no "order received" notice); the new build is the
 * current code, which adds the notice behind patched(). 70 orders go onto Kafka and the ingress starts
 * their sagas; the card gateway is slow (the product's KTS_GATEWAY_LATENCY_* setting), so they pile
 * up in chargePayment. Once most are there the old saga worker stops (its graceful stop, as on
 * SIGTERM) mid-flight; 30 more orders arrive while no saga worker runs; then the new build starts
 * and takes over every run. Each saga must end CONFIRMED, no workflow task may fail (nondeterminism
 * would show as WorkflowTaskFailed in the history long before any end status), runs the old build
 * started keep the old path and the others take the new one. Counts from PostgreSQL and Temporal.
 * The same in-flight histories replayed on the change made without patched() must fail: the drill
 * can tell a safe deploy from an unsafe one.
 */
import path from 'node:path';

import type { WorkflowHandle } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DefaultLogger } from '@temporalio/worker';
import pg from 'pg';

import { placedEvent } from '../../src/cli/order-events';
import { scopeNames } from '../../src/config/scope';
import { replayHistories } from '../../src/deploy/replay-check';
import { TOPICS } from '../../src/events/topics';
import { idempotencyKey, orderWorkflowId } from '../../src/shared/saga-contract';
import { bundleSagaWorkflows } from '../../workers/saga-workers';
import type { orderSaga } from '../../workflows';
import type { DrillProcess } from '../support/drill-roles';
import { quietTemporalRuntime, startDrillProcess, workflowTaskFailures } from '../support/drill-roles';
import { produce } from '../support/ingress-harness';
import { provisionScope } from '../support/provision-scope';
import { allSettings } from '../support/settings';
import { endpoints, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

// About 3 min alone; the margin is for a machine shared with other suites (no wall-clock limit is asserted).
jest.setTimeout(600_000);

const FIRST_WAVE = 70;
const SECOND_WAVE = 30;
const TOTAL = FIRST_WAVE + SECOND_WAVE;
/** The old build stops once this many of the first wave are held in chargePayment, … */
const CHARGING_AT_STOP = 50;
/**
 * Each charge is booked, then answered this long after: long enough that no saga can finish before
 * the new build runs, short enough for the saga's 30 s activity timeout (sagas run with the defaults).
 */
const LATENCY_MIN_MS = 12_000;
const GATEWAY = { KTS_GATEWAY_LATENCY_MIN_MS: String(LATENCY_MIN_MS), KTS_GATEWAY_LATENCY_MAX_MS: '16000' };
/** … or once the first charge has waited this long, so that on a slow machine none is answered before the stop. */
const STOP_BEFORE_FIRST_ANSWER_MS = LATENCY_MIN_MS - 4_000;

const quiet = new DefaultLogger('ERROR');
const variant = (file: string) => path.join(__dirname, '..', 'support', 'workflows', file);

describe('drill: rolling deploy of the saga worker with 100 sagas in flight', () => {
  const scope = uniqueName('drill_deploy');
  const names = scopeNames(scope);
  const admin = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 3 });
  let connection: Connection;
  let client: Client;
  let oldBuild: WorkflowBundleWithSourceMap;
  let newBuild: WorkflowBundleWithSourceMap;
  let unpatched: WorkflowBundleWithSourceMap;
  const processes: DrillProcess[] = [];
  const orderIds: string[] = [];

  beforeAll(async () => {
    quietTemporalRuntime();
    // As `npm run provision` does for KTS_SCOPE=<scope>: the ingress only verifies its topics.
    await provisionScope(scope, { topics: [TOPICS.orderPlaced, TOPICS.orderCancelled], partitions: 3 });
    connection = await Connection.connect({ address: endpoints.temporalAddress });
    client = new Client({ connection });
    // One at a time: bundling is CPU-bound and the machine is shared. The two builds run in drill
    // processes, which trace as the settings say.
    const traced = allSettings.common.temporalTracing;
    oldBuild = await bundleSagaWorkflows({
      workflowsPath: variant('saga-before-received-notice.ts'),
      logger: quiet,
      traced,
    });
    newBuild = await bundleSagaWorkflows({ logger: quiet, traced });
    unpatched = await bundleSagaWorkflows({
      workflowsPath: variant('saga-unpatched-received-notice.ts'),
      logger: quiet,
    });
  });

  afterAll(async () => {
    for (const id of orderIds) {
      await client?.workflow
        .getHandle(orderWorkflowId(id))
        .terminate('drill cleanup')
        .catch(() => undefined);
    }
    for (const p of processes.reverse()) await p.stop().catch(() => undefined);
    await connection?.close();
    await admin.end();
  });

  const handle = (orderId: string): WorkflowHandle<typeof orderSaga> =>
    client.workflow.getHandle(orderWorkflowId(orderId));

  /**
   * Orders (of `ids`) whose charge the gateway has booked (their saga is in chargePayment or past it),
   * and how long ago the first of them was booked (the server's clock).
   */
  async function charged(ids: readonly string[]): Promise<{ n: number; firstMsAgo: number }> {
    const keys = ids.map((id) => idempotencyKey(orderWorkflowId(id), 'chargePayment'));
    const { rows } = await admin.query<{ n: number; first_ms_ago: number | null }>(
      `SELECT count(*)::int AS n, (extract(epoch FROM now() - min(created_at)) * 1000)::float8 AS first_ms_ago
         FROM card_gateway.charges WHERE idempotency_key = ANY($1)`,
      [keys],
    );
    return { n: rows[0]?.n ?? 0, firstMsAgo: rows[0]?.first_ms_ago ?? 0 };
  }

  async function openRuns(ids: readonly string[]): Promise<number> {
    const described = await Promise.all(ids.map((id) => handle(id).describe()));
    return described.filter((d) => d.status.name === 'RUNNING').length;
  }

  async function placeOrders(sku: string, count: number): Promise<string[]> {
    const events = Array.from({ length: count }, () =>
      placedEvent({ version: 2, skus: [sku], orderId: uniqueName('drill-deploy') }),
    );
    await produce(
      names.topics.orderPlaced,
      events.map((event) => ({ event })),
    );
    const ids = events.map((e) => e.orderId);
    orderIds.push(...ids);
    return ids;
  }

  it('every saga ends CONFIRMED across the replacement, none fails a workflow task', async () => {
    const began = Date.now();
    const sku = uniqueName('SKU-DRILL-DEPLOY');
    await admin.query('INSERT INTO inventory.stock (sku, available) VALUES ($1, 1000)', [sku]);
    // The services and the ingress stay up throughout; activity slots for every charge the slow gateway holds.
    processes.push(
      await startDrillProcess(
        scope,
        'services',
        ['orders', 'inventory', 'payments', 'notifications', 'ingress'],
        { ...GATEWAY, KTS_PG_POOL_SIZE: '20' },
        { maxConcurrentActivityTaskExecutions: 2 * TOTAL },
      ),
    );
    const old = await startDrillProcess(scope, 'saga-old-build', ['saga'], {}, { workflowBundle: oldBuild });

    const firstWave = await placeOrders(sku, FIRST_WAVE);
    await waitUntil(
      `${CHARGING_AT_STOP} sagas of the first wave in chargePayment`,
      () => charged(firstWave),
      (c) => c.n >= CHARGING_AT_STOP || (c.n > 0 && c.firstMsAgo >= STOP_BEFORE_FIRST_ANSWER_MS),
      { timeoutMs: 240_000 },
    );
    // The old build stops mid-flight, the way runProcess stops a worker on SIGTERM.
    await old.stop();
    const chargingAtStop = (await charged(firstWave)).n;

    // Orders keep arriving while no saga worker runs: the ingress starts their sagas all the same.
    const secondWave = await placeOrders(sku, SECOND_WAVE);
    const all = [...firstWave, ...secondWave];
    // Only the ones not seen yet are asked for again: the shared server has other work.
    const started = new Set<string>();
    await waitUntil(
      'the ingress to start every saga',
      async () => {
        const probed = await Promise.all(
          all
            .filter((id) => !started.has(id))
            .map((id) =>
              handle(id)
                .describe()
                .then(
                  () => id,
                  () => null,
                ),
            ),
        );
        for (const id of probed) if (id) started.add(id);
        return started.size;
      },
      (n) => n === TOTAL,
      { timeoutMs: 240_000 },
    );

    // Before the new build takes over: what `npm run deploy:check` does, on the histories in flight.
    // The patched change replays every one of them; the same change without patched() does not.
    const inFlight = await Promise.all(
      firstWave.map(async (id) => ({
        workflowId: orderWorkflowId(id),
        runId: '',
        status: 'Running',
        history: await handle(id).fetchHistory(),
      })),
    );
    const openAtTakeover = await openRuns(all);
    expect(openAtTakeover).toBe(TOTAL);
    expect((await replayHistories(newBuild, inFlight)).failures).toEqual([]);
    const unsafe = await replayHistories(unpatched, inFlight);
    expect(unsafe.failures.length).toBeGreaterThanOrEqual(chargingAtStop);
    expect(new Set(unsafe.failures.map((f) => f.errorName))).toEqual(new Set(['DeterminismViolationError']));

    // The new build takes over.
    const takeover = Date.now();
    processes.push(await startDrillProcess(scope, 'saga-new-build', ['saga'], {}, { workflowBundle: newBuild }));
    const results = await Promise.all(all.map((id) => handle(id).result()));
    const drained = Date.now();
    expect(results.filter((r) => r.outcome === 'CONFIRMED')).toHaveLength(TOTAL);

    // No run failed a workflow task, nondeterminism or otherwise, on either build.
    const failures = (
      await Promise.all(all.map(async (id) => ({ id, failed: await workflowTaskFailures(handle(id)) })))
    ).filter((r) => r.failed.length > 0);
    expect(failures).toEqual([]);

    // Which path each run took: the notice is scheduled only by runs whose first task ran on the new build.
    const paths = await Promise.all(
      all.map(async (id) => {
        const history = await handle(id).fetchHistory();
        const events = history.events ?? [];
        const activities = events.flatMap((e) => {
          const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
          return name ? [name] : [];
        });
        const builds = new Set(
          events.flatMap((e) => {
            const a = e.workflowTaskCompletedEventAttributes;
            const b = a?.workerVersion?.buildId ?? a?.deploymentVersion?.buildId ?? a?.binaryChecksum;
            return b ? [b] : [];
          }),
        );
        // Timed-out workflow tasks are retried, not failures: schedule-to-start on the stopped worker's sticky
        // queue (Temporal then moves the task to the normal queue), start-to-close on a busy machine.
        const timeouts = events.flatMap((e) => {
          const t = e.workflowTaskTimedOutEventAttributes?.timeoutType;
          return t === null || t === undefined ? [] : [temporal.api.enums.v1.TimeoutType[t]];
        });
        return { id, noticeFirst: activities[1] === 'notifyCustomer', builds: builds.size, timeouts };
      }),
    );
    const oldPath = paths.filter((p) => !p.noticeFirst);
    const newPath = paths.filter((p) => p.noticeFirst);
    // Every run the old build had taken past createOrder stays on the old path, on both builds.
    expect(oldPath.length).toBeGreaterThanOrEqual(chargingAtStop);
    expect(oldPath.every((p) => p.builds === 2)).toBe(true);
    // Every run of the second wave started on the new build and sent the notice.
    expect(newPath.map((p) => p.id)).toEqual(expect.arrayContaining(secondWave));
    expect(oldPath.length + newPath.length).toBe(TOTAL);

    // PostgreSQL: one order, one reservation and one charge per saga; nothing twice.
    const ids = all;
    const db = await admin.query<{ orders: number; confirmed: number; payments: number; charges: number }>(
      `SELECT
         (SELECT count(*)::int FROM orders.orders WHERE order_id = ANY($1)) AS orders,
         (SELECT count(*)::int FROM orders.orders WHERE order_id = ANY($1) AND status = 'CONFIRMED') AS confirmed,
         (SELECT count(*)::int FROM payments.payments WHERE order_id = ANY($1) AND status = 'CAPTURED') AS payments,
         (SELECT count(*)::int FROM card_gateway.charges WHERE idempotency_key = ANY($2)) AS charges`,
      [ids, ids.map((id) => idempotencyKey(orderWorkflowId(id), 'chargePayment'))],
    );
    expect(db.rows[0]).toEqual({ orders: TOTAL, confirmed: TOTAL, payments: TOTAL, charges: TOTAL });
    // Temporal: one run per order (the workflow id allows no second), all on this drill's task queue.
    const runs = await waitUntil(
      'visibility to index every run',
      async () => (await client.workflow.count(`TaskQueue = '${names.taskQueues.saga}'`)).count,
      (n) => n >= TOTAL,
      { timeoutMs: 60_000 },
    );
    expect(runs).toBe(TOTAL);

    console.log(
      JSON.stringify({
        drill: 'rolling-deploy',
        sagas: TOTAL,
        openAtTakeover,
        chargingAtStop,
        oldPath: oldPath.length,
        newPath: newPath.length,
        unsafeReplayFailures: unsafe.failures.length,
        workflowTaskFailures: failures.length,
        workflowTaskTimeouts: paths
          .flatMap((p) => p.timeouts)
          .reduce<Record<string, number>>((c, t) => ({ ...c, [t]: (c[t] ?? 0) + 1 }), {}),
        secondsToTakeover: Math.round((takeover - began) / 1000),
        secondsTakeoverToAllEnded: Math.round((drained - takeover) / 1000),
      }),
    );
  });
});
