/**
 * Failure drill (issue #11): Kafka as a three-node KRaft cluster (replication 3, min.insync.replicas
 * 2), the leader of the busiest order.placed partitions killed with kill -9 mid-load and restarted.
 *
 * The cluster is private (127.0.0.3, a temporary folder, started by the stack tool's own `up` path
 * with KTS_STACK_KAFKA_BROKERS=3) and so is Temporal (a dev server of its own, so the drill's 600 sagas
 * do not wait on whatever else the shared server holds); PostgreSQL and the registry are the shared
 * stack's, kept apart by a scope of this test's own. Provisioning creates the scope's topics, the app's start
 * function runs the ingress and every worker, and an external producer sends Avro orders through
 * the registry while a broker dies. Every count below is read from PostgreSQL, Temporal or the
 * cluster at the end, never from the producer's own tally.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { Connection } from '@temporalio/client';
import { Client } from '@temporalio/client';
import type { Admin } from 'kafkajs';
import { ConfigResourceTypes } from 'kafkajs';
import pg from 'pg';
import pino from 'pino';

import type { RunningRoles } from '../../src/app/roles';
import { startRoles } from '../../src/app/roles';
import { installTemporalRuntime } from '../../src/app/run-process';
import { placedEvent } from '../../src/cli/order-events';
import { connectTemporal, createProducer, createRegistryClient } from '../../src/config/clients';
import type { Settings } from '../../src/config/settings';
import { loadSettings } from '../../src/config/settings';
import { EventCodec } from '../../src/events/codec';
import type { OrderPlacedV1, OrderPlacedV2 } from '../../src/events/generated/event-schemas';
import { deadLetterTopic, TOPICS } from '../../src/events/topics';
import { createMetrics } from '../../src/observability/metrics';
import { buildPlan } from '../../src/provision/plan';
import { runProvision } from '../../src/provision/run';
import { provisionSettingsFrom } from '../../src/provision/settings';
import { orderWorkflowId } from '../../src/shared/saga-contract';
import { DECLINED_CARD_TOKEN } from '../../src/simulated-external/card-gateway';
import { PrivateTemporal } from '../../src/stack/private-temporal';
import { PrivateKafkaCluster } from '../support/private-kafka-cluster';
import { endpoints, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(900_000);

const ORDERS = 600;
/** Every tenth order pays with a card the gateway declines: that saga must end FAILED, compensated. */
const DECLINE_EVERY = 10;
const DECLINED = ORDERS / DECLINE_EVERY;
/** Orders per second the producer offers: production spans the kill, the failover and the restart. */
const RATE = 40;
const BATCH = 10;
/** The broker dies once this many orders are on Kafka. */
const KILL_AFTER = 200;
const STOCK = 1_000_000;

const ROLES = ['saga', 'orders', 'inventory', 'payments', 'notifications', 'ingress'] as const;
type DrillRole = (typeof ROLES)[number];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PartitionView {
  partition: number;
  leader: number;
  isr: number[];
  records: number;
}

/** Leader, in-sync replicas and record count of each partition of `topic`. */
async function partitions(admin: Admin, topic: string): Promise<PartitionView[]> {
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  const offsets = await admin.fetchTopicOffsets(topic);
  return (meta.topics[0]?.partitions ?? [])
    .map((p) => {
      const o = offsets.find((x) => x.partition === p.partitionId);
      return {
        partition: p.partitionId,
        leader: p.leader,
        isr: [...p.isr].sort(),
        records: o ? Number(o.high) - Number(o.low) : 0,
      };
    })
    .sort((a, b) => a.partition - b.partition);
}

/**
 * Polls `probe` (a rising number) until `done`; fails when it has not risen for `stallMs`, with
 * `diagnose`'s picture of the system in the message.
 */
async function whileProgressing(
  what: string,
  probe: () => Promise<number>,
  done: (v: number) => boolean,
  diagnose: () => Promise<string>,
  stallMs = 180_000,
): Promise<void> {
  let best = await probe();
  let movedAt = Date.now();
  while (!done(best)) {
    if (Date.now() - movedAt > stallMs) {
      throw new Error(`${what}: no progress for ${stallMs / 1000} s at ${best}; ${await diagnose()}`);
    }
    await sleep(1000);
    const v = await probe();
    if (v > best) {
      best = v;
      movedAt = Date.now();
    }
  }
}

async function recordCount(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, o) => sum + Number(o.high) - Number(o.low), 0);
}

describe('Kafka drill: the leader of the busiest order partitions killed with kill -9 mid-load', () => {
  const scope = uniqueName('drill_kafka');
  const skus = [`SKU-DRILL-KAFKA-A-${scope}`, `SKU-DRILL-KAFKA-B-${scope}`];
  const logFile = path.join(os.tmpdir(), `${scope}.log`);
  const db = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 4 });
  let cluster: PrivateKafkaCluster | undefined;
  let temporal: PrivateTemporal | undefined;
  let settings: Settings<DrillRole>;
  let running: RunningRoles | undefined;
  let connection: Connection | undefined;
  let client: Client;
  let sagaQueue: string;
  const startedAt = Date.now();
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    cluster = await PrivateKafkaCluster.create();
    await cluster.start();
    timings.clusterUpMs = Date.now() - startedAt;
    temporal = await PrivateTemporal.create();
    await temporal.start();
    // The app as a deployment on that cluster would set it: brokers and replication by settings.
    const env = {
      ...process.env,
      KTS_SCOPE: scope,
      KTS_KAFKA_BROKERS: cluster.brokers.join(','),
      KTS_TOPIC_REPLICATION_FACTOR: '3',
      TEMPORAL_ADDRESS: temporal.address,
      KTS_METRICS_PORT: '0',
      LOG_LEVEL: 'warn',
    };
    // Provisioning apart from the roles: startRoles would otherwise apply the whole plan (a connector too).
    const provision = provisionSettingsFrom(loadSettings(['provision'], env));
    settings = loadSettings(ROLES, env);
    sagaQueue = settings.common.names.taskQueues.saga;
    await runProvision(
      buildPlan({
        ...provision.plan,
        cdc: null,
        include: ['topic', 'subject', 'search-attributes'],
        topics: [TOPICS.orderPlaced, TOPICS.orderCancelled],
      }),
      provision.targets,
    );
    for (const sku of skus)
      await db.query('INSERT INTO inventory.stock (sku, available) VALUES ($1, $2)', [sku, STOCK]);
    connection = await connectTemporal(settings.temporal);
    client = new Client({ connection, namespace: settings.temporal.namespace });
    const t0 = Date.now();
    const logger = pino({ level: 'info' }, pino.destination({ dest: logFile, sync: false }));
    // As runProcess does: the SDK's and the workflows' log lines go to the app's log, not the console.
    try {
      installTemporalRuntime(logger, 'warn');
    } catch {
      // Another suite of this Jest process installed the runtime already.
    }
    running = await startRoles(settings, ROLES, {
      logger,
      metrics: createMetrics('kts-drill-kafka'),
    });
    timings.appStartMs = Date.now() - t0;
  });

  afterAll(async () => {
    const problems: unknown[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        problems.push(new Error(`${what}: ${(err as Error).message}`));
      }
    };
    // The app first, so its workers stop competing with the terminations for the shared server.
    await attempt('stopping the app', async () => running?.stop());
    // Nothing of this drill may stay RUNNING in the shared namespace.
    if (connection) {
      await attempt('terminating running sagas', async () => {
        const open: { workflowId: string; runId: string }[] = [];
        for await (const wf of client.workflow.list({
          query: `TaskQueue = '${sagaQueue}' AND ExecutionStatus = 'Running'`,
        })) {
          open.push(wf);
        }
        for (let i = 0; i < open.length; i += 25) {
          await Promise.all(
            open.slice(i, i + 25).map((wf) =>
              client.workflow
                .getHandle(wf.workflowId, wf.runId)
                .terminate('kafka drill ended')
                // One may end between the listing and this call: that is what we want anyway.
                .catch(() => undefined),
            ),
          );
        }
      });
    }
    await attempt('closing Temporal', async () => connection?.close());
    await attempt('stopping the drill Temporal', async () => temporal?.stop());
    // The private brokers go whatever happened above.
    await attempt('stopping the drill cluster', async () => cluster?.stop());
    await attempt('closing PostgreSQL', () => db.end());
    // Removed when the drill passed; kept for reading when it did not.
    if (fs.existsSync(logFile)) console.log(`the app's log of this drill: ${logFile}`);
    if (problems.length) throw new AggregateError(problems, problems.map((p) => (p as Error).message).join('; '));
  });

  it('declares replication 3 and min.insync.replicas 2 on the order topics it provisioned', async () => {
    const names = settings.common.names.topics;
    const topics = [names.orderPlaced, names.orderCancelled].flatMap((t) => [t, deadLetterTopic(t)]);
    await cluster!.withAdmin(async (admin) => {
      const meta = await admin.fetchTopicMetadata({ topics });
      for (const t of meta.topics) {
        expect(t.partitions).toHaveLength(6);
        expect(t.partitions.every((p) => p.replicas.length === 3 && p.isr.length === 3)).toBe(true);
      }
      const configs = await admin.describeConfigs({
        resources: topics.map((name) => ({
          type: ConfigResourceTypes.TOPIC,
          name,
          configNames: ['min.insync.replicas'],
        })),
        includeSynonyms: false,
      });
      expect(configs.resources.map((r) => [r.resourceName, r.configEntries[0]?.configValue]).sort()).toEqual(
        topics.map((t) => [t, '2']).sort(),
      );
      // The broker's own internal topics are replicated alike (consumer offsets hold the ingress's commits).
      const offsets = await admin.fetchTopicMetadata({ topics: ['__consumer_offsets'] });
      expect(offsets.topics[0]?.partitions.every((p) => p.replicas.length === 3)).toBe(true);
    });
  });

  /** What the ingress and the cluster look like, for a failure message. */
  const diagnose = async (): Promise<string> => {
    const names = settings.common.names;
    const ledger = await db.query<{ p: number; n: string; max: string }>(
      `SELECT source_partition AS p, count(*) AS n, max(source_offset) AS max FROM ingress.processed_events
        WHERE source_topic = $1 GROUP BY 1 ORDER BY 1`,
      [names.topics.orderPlaced],
    );
    const kafka = await cluster!
      .withAdmin(async (admin) => ({
        partitions: await partitions(admin, names.topics.orderPlaced),
        committed: await admin.fetchOffsets({ groupId: names.groups.ingress, topics: [names.topics.orderPlaced] }),
        group: (await admin.describeGroups([names.groups.ingress])).groups.map((g) => ({
          state: g.state,
          members: g.members.length,
        })),
      }))
      .catch((err: unknown) => ({ error: (err as Error).message }));
    return JSON.stringify({
      ledger: ledger.rows.map((r) => [r.p, Number(r.n), Number(r.max)]),
      kafka,
      ingress: running?.ingress?.consumer.stats,
    });
  };

  it(`ends all ${ORDERS} orders as designed, each once, with the busiest leader killed and restarted`, async () => {
    const names = settings.common.names.topics;
    const events: (OrderPlacedV1 | OrderPlacedV2)[] = Array.from({ length: ORDERS }, (_, i) =>
      placedEvent({
        version: i % 2 === 0 ? 1 : 2,
        skus,
        paymentToken: i % DECLINE_EVERY === DECLINE_EVERY - 1 ? DECLINED_CARD_TOKEN : 'tok_visa',
      }),
    );
    const declinedIds = new Set(events.filter((e) => e.paymentToken === DECLINED_CARD_TOKEN).map((e) => e.orderId));
    const ids = events.map((e) => e.orderId);

    // An external producer: Avro framed with the registry's schema ids, key = orderId, idempotent, acks=all.
    const codec = new EventCodec(createRegistryClient(settings.registry));
    const producer = createProducer(cluster!.client('drill-producer'));
    await producer.connect();
    let sent = 0;
    const loadStartedAt = Date.now();
    const producing = (async () => {
      try {
        for (let i = 0; i < ORDERS; i += BATCH) {
          const batch = events.slice(i, i + BATCH);
          const messages = await Promise.all(
            batch.map(async (e) => ({ key: e.orderId, value: await codec.encode(names.orderPlaced, e) })),
          );
          await producer.send({ topic: names.orderPlaced, acks: -1, messages });
          sent += batch.length;
          const wait = loadStartedAt + (sent / RATE) * 1000 - Date.now();
          if (wait > 0) await sleep(wait);
        }
      } finally {
        await producer.disconnect();
      }
    })();

    // The fault: once a third of the orders is on Kafka, the node leading the most records of the
    // order topic's partitions dies without a shutdown.
    const fault = (async () => {
      await waitUntil(
        `${KILL_AFTER} orders produced`,
        () => Promise.resolve(sent),
        (n) => n >= KILL_AFTER,
      );
      const before = await cluster!.withAdmin((admin) => partitions(admin, names.orderPlaced));
      const byLeader = new Map<number, { records: number; partitions: number[] }>();
      for (const p of before) {
        const l = byLeader.get(p.leader) ?? { records: 0, partitions: [] };
        l.records += p.records;
        l.partitions.push(p.partition);
        byLeader.set(p.leader, l);
      }
      const [victim, led] = [...byLeader.entries()].sort((a, b) => b[1].records - a[1].records)[0]!;
      const killedAt = Date.now();
      await cluster!.kill9(victim);
      const producedAtKill = sent;
      // Leadership moves once the controllers fence the dead node; writes need 2 of 3 in sync meanwhile.
      await cluster!.withAdmin((admin) =>
        // A probe that throws (no leader yet mid-failover) counts as not done.
        waitUntil(
          `leaders of ${names.orderPlaced} off node ${victim}`,
          () => partitions(admin, names.orderPlaced),
          (ps) => ps.every((p) => p.leader >= 0 && p.leader !== victim && p.isr.length === 2),
          { timeoutMs: 120_000, intervalMs: 250, retryOnError: true },
        ),
      );
      const failoverMs = Date.now() - killedAt;
      // It stays dead until the producer is done, so part of the load goes to a two-node cluster.
      await producing;
      const downMs = Date.now() - killedAt;
      cluster!.restart(victim);
      const restartedAt = Date.now();
      await cluster!.withAdmin((admin) =>
        waitUntil(
          `node ${victim} back in every in-sync replica set`,
          () => partitions(admin, names.orderPlaced),
          (ps) => ps.every((p) => p.isr.length === 3),
          { timeoutMs: 180_000, intervalMs: 250, retryOnError: true },
        ),
      );
      return { victim, led, producedAtKill, failoverMs, downMs, rejoinMs: Date.now() - restartedAt };
    })();

    const [, drill] = await Promise.all([producing, fault]);
    // Until every order was sent and the restarted node was back in every ISR.
    const producedAndRejoinedMs = Date.now() - loadStartedAt;

    // The ingress has taken every order (a ledger row each), then every saga of the scope has ended.
    // Both wait as long as they make progress: the shared Temporal server's speed varies a lot.
    const ledgerRows = async () =>
      Number(
        (
          await db.query<{ n: string }>('SELECT count(*) AS n FROM ingress.processed_events WHERE source_topic = $1', [
            names.orderPlaced,
          ])
        ).rows[0]!.n,
      );
    await whileProgressing(`the ingress took all ${ORDERS} orders`, ledgerRows, (n) => n >= ORDERS, diagnose);
    const openSagas = async () =>
      (await client.workflow.count(`TaskQueue = '${sagaQueue}' AND ExecutionStatus = 'Running'`)).count;
    await whileProgressing(
      'every saga ended',
      async () => -(await openSagas()),
      (n) => n === 0,
      diagnose,
    );
    const loadMs = Date.now() - loadStartedAt;

    // ---- Kafka: exactly the orders sent, no retried batch written twice, no dead letter.
    const kafka = await cluster!.withAdmin(async (admin) => ({
      placed: await recordCount(admin, names.orderPlaced),
      dlq:
        (await recordCount(admin, deadLetterTopic(names.orderPlaced))) +
        (await recordCount(admin, deadLetterTopic(names.orderCancelled))),
    }));
    expect(kafka).toEqual({ placed: ORDERS, dlq: 0 });

    // ---- Temporal: one run per order, each completed, in the state its card made.
    const runs = new Map<string, number>();
    const statuses = new Map<string, number>();
    for await (const wf of client.workflow.list({ query: `TaskQueue = '${sagaQueue}'` })) {
      runs.set(wf.workflowId, (runs.get(wf.workflowId) ?? 0) + 1);
      statuses.set(wf.status.name, (statuses.get(wf.status.name) ?? 0) + 1);
    }
    expect([...runs.keys()].sort()).toEqual(ids.map(orderWorkflowId).sort());
    expect([...runs.values()].filter((n) => n !== 1)).toEqual([]);
    expect(Object.fromEntries(statuses)).toEqual({ COMPLETED: ORDERS });
    const state = async (s: string) =>
      (await client.workflow.count(`TaskQueue = '${sagaQueue}' AND OrderState = '${s}'`)).count;
    expect({ CONFIRMED: await state('CONFIRMED'), FAILED: await state('FAILED') }).toEqual({
      CONFIRMED: ORDERS - DECLINED,
      FAILED: DECLINED,
    });

    // ---- PostgreSQL: the ingress ledger saw each order once and started one saga for it.
    const ledger = await db.query<{ outcome: string; n: string; orders: string }>(
      `SELECT outcome, count(*) AS n, count(DISTINCT order_id) AS orders FROM ingress.processed_events
        WHERE source_topic = $1 GROUP BY outcome`,
      [names.orderPlaced],
    );
    expect(ledger.rows.map((r) => [r.outcome, Number(r.n), Number(r.orders)])).toEqual([['STARTED', ORDERS, ORDERS]]);
    const sagas = await db.query<{ n: string }>(
      'SELECT count(*) AS n FROM ingress.order_sagas WHERE order_id = ANY($1)',
      [ids],
    );
    expect(Number(sagas.rows[0]!.n)).toBe(ORDERS);

    // The orders service: each order once, confirmed unless its card declined.
    const orders = await db.query<{ order_id: string; status: string }>(
      'SELECT order_id, status FROM orders.orders WHERE order_id = ANY($1)',
      [ids],
    );
    expect(orders.rows).toHaveLength(ORDERS);
    expect(orders.rows.filter((r) => r.status !== (declinedIds.has(r.order_id) ? 'FAILED' : 'CONFIRMED'))).toEqual([]);

    // The card gateway's books: one charge per order, captured exactly for the confirmed ones, no refund.
    const keys = ids.map((id) => `${orderWorkflowId(id)}/chargePayment`);
    const charges = await db.query<{ outcome: string; n: string; keys: string; refunded: string }>(
      `SELECT outcome, count(*) AS n, count(DISTINCT idempotency_key) AS keys, sum(refunded_minor) AS refunded
         FROM card_gateway.charges WHERE idempotency_key = ANY($1) GROUP BY outcome ORDER BY outcome`,
      [keys],
    );
    expect(charges.rows.map((r) => [r.outcome, Number(r.n), Number(r.keys), Number(r.refunded)])).toEqual([
      ['captured', ORDERS - DECLINED, ORDERS - DECLINED, 0],
      ['declined', DECLINED, DECLINED, 0],
    ]);
    const refunds = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM card_gateway.refunds r JOIN card_gateway.charges c USING (charge_id)
        WHERE c.idempotency_key = ANY($1)`,
      [keys],
    );
    expect(Number(refunds.rows[0]!.n)).toBe(0);
    const payments = await db.query<{ status: string; n: string }>(
      'SELECT status, count(*) AS n FROM payments.payments WHERE order_id = ANY($1) GROUP BY status ORDER BY status',
      [ids],
    );
    expect(payments.rows.map((r) => [r.status, Number(r.n)])).toEqual([
      ['CAPTURED', ORDERS - DECLINED],
      ['DECLINED', DECLINED],
    ]);

    // Inventory: stock went down by exactly the confirmed orders' lines; declined ones were released.
    const confirmedQty = new Map<string, number>();
    for (const e of events) {
      if (declinedIds.has(e.orderId)) continue;
      for (const line of e.items) confirmedQty.set(line.sku, (confirmedQty.get(line.sku) ?? 0) + line.quantity);
    }
    const stock = await db.query<{ sku: string; available: number }>(
      'SELECT sku, available FROM inventory.stock WHERE sku = ANY($1) ORDER BY sku',
      [skus],
    );
    expect(stock.rows.map((r) => [r.sku, r.available])).toEqual(
      [...skus].sort().map((s) => [s, STOCK - (confirmedQty.get(s) ?? 0)]),
    );
    const reservations = await db.query<{ status: string; n: string }>(
      'SELECT status, count(*) AS n FROM inventory.reservations WHERE order_id = ANY($1) GROUP BY status ORDER BY status',
      [ids],
    );
    expect(reservations.rows.map((r) => [r.status, Number(r.n)])).toEqual([
      ['RELEASED', DECLINED],
      ['RESERVED', ORDERS - DECLINED],
    ]);

    const stats = running!.ingress!.consumer.stats;
    const gatewayRequests = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM card_gateway.requests WHERE operation = 'charge' AND idempotency_key = ANY($1)`,
      [keys],
    );
    // The figures of the Reliability row in BENCHMARKS.md.
    console.log(
      JSON.stringify({
        drill: 'kafka-broker-kill',
        orders: ORDERS,
        declined: DECLINED,
        killedNode: drill.victim,
        ledPartitions: drill.led.partitions,
        recordsOnKilledLeader: drill.led.records,
        producedAtKill: drill.producedAtKill,
        failoverSeconds: drill.failoverMs / 1000,
        downSeconds: drill.downMs / 1000,
        rejoinSeconds: drill.rejoinMs / 1000,
        producedAndRejoinedSeconds: producedAndRejoinedMs / 1000,
        allSagasEndedSeconds: loadMs / 1000,
        clusterUpSeconds: timings.clusterUpMs! / 1000,
        appStartSeconds: timings.appStartMs! / 1000,
        kafkaRecords: kafka.placed,
        deadLetters: kafka.dlq,
        workflowRuns: [...runs.values()].reduce((a, b) => a + b, 0),
        redeliveredToIngress: stats.handled.DUPLICATE_EVENT,
        ingressTransientFailures: stats.transientFailures,
        gatewayChargeRequests: Number(gatewayRequests.rows[0]!.n),
        wallSeconds: (Date.now() - startedAt) / 1000,
      }),
    );
    fs.rmSync(logFile, { force: true });
  });
});
