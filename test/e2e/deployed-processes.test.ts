/**
 * Issue #9: the system as a deployment runs it. Every service's worker and the orchestrator each
 * in its own OS process, started through its real entry point (`workers/<role>-worker.ts`, what
 * the README tells a user to run) with only its own role's database URL, plus two ingress replicas
 * (`src/ingress/main.ts`, what `npm run ingress` runs) in one consumer group. Orders arrive on
 * Kafka from a producer that knows nothing of this code base (the registry's latest schema, Avro,
 * Confluent framing). Every saga completes exactly once, counted in PostgreSQL and Temporal; then
 * one replica is killed with SIGKILL while orders keep coming, and the other takes over its
 * partitions with nothing lost and nothing done twice.
 *
 * Kafka, PostgreSQL and the registry are the shared stack's, isolated by a unique KTS_SCOPE. Temporal
 * is a dev server of this test's own, provisioned like any target: the shared one also serves every
 * other suite and drill, and under their load its workflow tasks time out, which would make this
 * test's duration (not its outcome) depend on its neighbours. Counts come from PostgreSQL and it.
 */
import path from 'node:path';

import type { Client } from '@temporalio/client';
import avro from 'avsc';
import type { Admin, Producer } from 'kafkajs';
import { AssignerProtocol } from 'kafkajs';
import pg from 'pg';

import type { RoleProcess } from '../../src/app/role-process';
import { spawnRoleProcess } from '../../src/app/role-process';
import { placedEvent } from '../../src/cli/order-events';
import { credentialOwners } from '../../src/config/settings';
import { repoRoot } from '../../src/config/stack-config';
import { buildPlan } from '../../src/provision/plan';
import { runProvision } from '../../src/provision/run';
import { provisionSettingsFrom } from '../../src/provision/settings';
import { orderWorkflowId, taskQueuesFor } from '../../src/shared/saga-contract';
import { PrivateTemporal } from '../../src/stack/private-temporal';
import type { IngressScope } from '../support/ingress-harness';
import { newScope, temporalClient, temporalRuns } from '../support/ingress-harness';
import { allSettings, testSettings } from '../support/settings';
import { endpoints, kafkaClient, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(300_000);

const PARTITIONS = 6;
/** Orders of the first phase (all replicas up), and how many of them are sent a second time. */
const FIRST = 16;
const RESENT = 4;
/** Orders of the second phase, produced at RATE per second; one replica is killed after KILL_AFTER of them. */
const SECOND = 32;
const RATE = 8;
const KILL_AFTER = 10;

const urls = allSettings.roles.provision.roleUrls;
/** Each process, its entry point, the roles it runs and the only database URL(s) it is given. */
const WORKERS = [
  { name: 'saga', entry: 'workers/saga-worker.ts', role: 'saga', vars: {} },
  {
    name: 'orders',
    entry: 'src/services/orders/orders-worker.ts',
    role: 'orders',
    vars: { KTS_PG_URL_ORDERS: urls.orders },
  },
  {
    name: 'inventory',
    entry: 'src/services/inventory/inventory-worker.ts',
    role: 'inventory',
    vars: { KTS_PG_URL_INVENTORY: urls.inventory },
  },
  {
    name: 'payments',
    entry: 'src/services/payments/payments-worker.ts',
    role: 'payments',
    vars: { KTS_PG_URL_PAYMENTS: urls.payments, KTS_PG_URL_CARD_GATEWAY: urls.card_gateway },
  },
  {
    name: 'notifications',
    entry: 'src/services/notifications/notifications-worker.ts',
    role: 'notifications',
    vars: { KTS_PG_URL_NOTIFICATIONS: urls.notifications },
  },
] as const;

/**
 * The environment of a deployed process: the test's own environment without any database
 * credential (whatever the shell running the tests holds), plus exactly `vars`. A process is handed
 * its own role's URL(s) and nothing else, as a deployment would.
 */
function deployedEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const credentials = new Set([...credentialOwners().keys(), 'PGUSER', 'PGPASSWORD']);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !credentials.has(k)));
  return { ...env, ...vars };
}

const logFile = (scope: string, name: string) =>
  path.join(repoRoot(), '.stack', 'logs', 'deployed-processes', `${scope}-${name}.log`);

/** A producer outside this code base: the subject's latest schema from the registry, Confluent framing. */
class ExternalProducer {
  private constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly schemaId: number,
    private readonly type: avro.Type,
  ) {}

  static async connect(topic: string): Promise<ExternalProducer> {
    const res = await fetch(
      `${allSettings.registry.url}/subjects/${encodeURIComponent(`${topic}-value`)}/versions/latest`,
    );
    if (!res.ok) throw new Error(`registry answered ${res.status} for ${topic}-value`);
    const latest = (await res.json()) as { id: number; version: number; schema: string };
    const producer = kafkaClient(`external-${topic}`).producer();
    await producer.connect();
    return new ExternalProducer(
      producer,
      topic,
      latest.id,
      avro.Type.forSchema(JSON.parse(latest.schema) as avro.Schema),
    );
  }

  /** Magic byte 0, the schema id (4 bytes, big-endian), then the Avro body; key = orderId. Returns the partition. */
  async send(event: { orderId: string }): Promise<number> {
    const header = Buffer.alloc(5);
    header.writeUInt32BE(this.schemaId, 1);
    const value = Buffer.concat([header, this.type.toBuffer(event)]);
    const [meta] = await this.producer.send({ topic: this.topic, acks: -1, messages: [{ key: event.orderId, value }] });
    return meta!.partition;
  }

  close(): Promise<void> {
    return this.producer.disconnect();
  }
}

/** Which partitions of the order topics each member of the group holds right now. */
async function assignment(admin: Admin, groupId: string, topic: string): Promise<Map<string, number[]>> {
  const { groups } = await admin.describeGroups([groupId]);
  const out = new Map<string, number[]>();
  for (const m of groups[0]?.members ?? []) {
    const a = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
    out.set(
      m.memberId,
      [...(a?.assignment[topic] ?? [])].sort((x, y) => x - y),
    );
  }
  return out;
}

describe('each role as its own process, two ingress replicas, one killed mid-load', () => {
  let scope: IngressScope;
  let temporal: { client: Client; close: () => Promise<void> };
  let external: ExternalProducer;
  let admin: Admin;
  const processes: RoleProcess[] = [];
  const db = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 2 });
  const sku = uniqueName('SKU-DEPLOYED');
  const server = PrivateTemporal.create();

  beforeAll(async () => {
    // A unique KTS_SCOPE: its own topics (6 partitions), consumer group and task queues on the shared stack.
    scope = await newScope('deployed', PARTITIONS);
    await db.query('INSERT INTO inventory.stock (sku, available) VALUES ($1, 100000)', [sku]);
    const t = await server;
    await t.start();
    const temporalEnv = { TEMPORAL_ADDRESS: t.address };
    // Its search attributes, as `npm run provision` registers them on any Temporal it is pointed at.
    const provision = provisionSettingsFrom(testSettings(['provision'], scope.prefix, temporalEnv));
    await runProvision(buildPlan({ ...provision.plan, include: ['search-attributes'] }), provision.targets);
    temporal = await temporalClient(t.address);
    admin = kafkaClient('deployed-admin').admin();
    await admin.connect();
    const common = { KTS_SCOPE: scope.prefix, LOG_LEVEL: 'info', KTS_METRICS_PORT: '0', ...temporalEnv };
    for (const w of WORKERS) {
      processes.push(
        spawnRoleProcess(
          w.name,
          w.entry,
          deployedEnv({ ...common, ...w.vars }),
          logFile(scope.prefix, w.name),
          `${w.role} running`,
        ),
      );
    }
    for (const name of ['ingress-a', 'ingress-b']) {
      const env = deployedEnv({
        ...common,
        KTS_PG_URL_INGRESS: urls.ingress,
        // The broker's minimum, so the survivor takes over after seconds rather than 30 s.
        KTS_INGRESS_SESSION_TIMEOUT_MS: '6000',
      });
      processes.push(
        spawnRoleProcess(name, 'src/ingress/main.ts', env, logFile(scope.prefix, name), 'ingress running'),
      );
    }
    external = await ExternalProducer.connect(scope.placed);
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    // Nothing of this scope stays RUNNING (the server goes next, but its file would keep them).
    if (temporal) {
      const query = `TaskQueue = '${taskQueuesFor(scope.taskQueuePrefix).saga}' AND ExecutionStatus = 'Running'`;
      for await (const wf of temporal.client.workflow.list({ query })) {
        await temporal.client.workflow.getHandle(wf.workflowId, wf.runId).terminate('test over');
      }
      await temporal.close();
    }
    await external?.close();
    await admin?.disconnect();
    await db.end();
    await (await server).stop();
  });

  const proc = (name: string) => processes.find((p) => p.name === name)!;

  /** Orders' states, charges and saga ledger rows, from PostgreSQL. */
  async function fromPostgres(ids: string[]) {
    const orders = await db.query<{ status: string; n: string }>(
      'SELECT status, count(*) AS n FROM orders.orders WHERE order_id = ANY($1) GROUP BY status',
      [ids],
    );
    const charges = await db.query<{ order_id: string; n: string }>(
      "SELECT order_id, count(*) AS n FROM payments.payments WHERE order_id = ANY($1) AND status = 'CAPTURED' GROUP BY order_id",
      [ids],
    );
    const sagas = await db.query<{ n: string }>(
      'SELECT count(*) AS n FROM ingress.order_sagas WHERE source_topic = $1 AND order_id = ANY($2)',
      [scope.placed, ids],
    );
    return {
      status: Object.fromEntries(orders.rows.map((r) => [r.status, Number(r.n)])),
      chargedOnce: charges.rows.filter((r) => r.n === '1').length,
      chargedTwice: charges.rows.filter((r) => r.n !== '1').map((r) => r.order_id),
      sagas: Number(sagas.rows[0]?.n),
    };
  }

  /** Every workflow run of the scope, from Temporal: each order exactly one run, COMPLETED. */
  async function fromTemporal(ids: string[]) {
    const runs = await temporalRuns(temporal.client, scope);
    const completed = new Set<string>();
    const query = `TaskQueue = '${taskQueuesFor(scope.taskQueuePrefix).saga}' AND ExecutionStatus = 'Completed'`;
    for await (const wf of temporal.client.workflow.list({ query })) completed.add(wf.workflowId);
    const wanted = ids.map(orderWorkflowId);
    return {
      runs: runs.size,
      unexpected: [...runs.keys()].filter((id) => !wanted.includes(id)),
      notOnce: [...runs.entries()].filter(([, n]) => n !== 1),
      completed: wanted.filter((id) => completed.has(id)).length,
    };
  }

  const placed: { orderId: string; partition: number; at: number }[] = [];
  const order = async () => {
    const event = placedEvent({ version: 2, skus: [sku] });
    const partition = await external.send(event);
    placed.push({ orderId: event.orderId, partition, at: Date.now() });
    return event;
  };

  it('runs every worker and two ingress replicas, each as its own process, and completes every saga exactly once', async () => {
    await Promise.all(processes.map((p) => p.ready));
    // Both replicas hold partitions of the one group.
    const members = await waitUntil(
      'both replicas assigned partitions',
      () => assignment(admin, scope.groupId, scope.placed),
      (a) => a.size === 2 && [...a.values()].every((ps) => ps.length > 0),
      { timeoutMs: 60_000 },
    );
    expect([...members.values()].flat().sort()).toEqual([0, 1, 2, 3, 4, 5]);

    const events = [];
    for (let i = 0; i < FIRST; i += 1) events.push(await order());
    // The same records again (same eventId), as a producer retrying after a timeout would send them.
    for (const e of events.slice(0, RESENT)) await external.send(e);
    const ids = events.map((e) => e.orderId);
    const pgCounts = await waitUntil(
      `${FIRST} orders CONFIRMED`,
      () => fromPostgres(ids),
      (c) => c.status.CONFIRMED === FIRST,
      { timeoutMs: 120_000 },
    );
    expect(pgCounts).toEqual({ status: { CONFIRMED: FIRST }, chargedOnce: FIRST, chargedTwice: [], sagas: FIRST });
    const t = await waitUntil(
      'every run completed in Temporal',
      () => fromTemporal(ids),
      (c) => c.completed === FIRST,
      { timeoutMs: 60_000 },
    );
    expect(t).toEqual({ runs: FIRST, unexpected: [], notOnce: [], completed: FIRST });
    const ledger = await db.query<{ outcome: string; n: string }>(
      'SELECT outcome, count(*) AS n FROM ingress.processed_events WHERE source_topic = $1 GROUP BY outcome',
      [scope.placed],
    );
    expect(Object.fromEntries(ledger.rows.map((r) => [r.outcome, Number(r.n)]))).toEqual({ STARTED: FIRST });
  });

  it('a replica killed with SIGKILL mid-load: the other takes over its partitions, nothing lost, nothing twice', async () => {
    const before = await assignment(admin, scope.groupId, scope.placed);
    expect(before.size).toBe(2);
    const firstIds = placed.map((p) => p.orderId);
    const victim = proc('ingress-a');
    let killedAt = 0;
    let killedHow: Promise<number | string> = Promise.resolve('not killed');
    const secondIds: string[] = [];
    for (let i = 0; i < SECOND; i += 1) {
      const started = Date.now();
      secondIds.push((await order()).orderId);
      if (i + 1 === KILL_AFTER) {
        victim.child.kill('SIGKILL');
        killedAt = Date.now();
        killedHow = victim.exited;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 / RATE - (Date.now() - started))));
    }
    expect(await killedHow).toBe('SIGKILL');

    // The survivor alone holds every partition, including the ones the killed member held.
    const after = await waitUntil(
      'the survivor to hold every partition',
      () => assignment(admin, scope.groupId, scope.placed),
      (a) => a.size === 1 && [...a.values()][0]?.length === PARTITIONS,
      { timeoutMs: 60_000 },
    );
    const [survivor] = [...after.keys()];
    expect(before.has(survivor!)).toBe(true);
    const taken = [...before.entries()].find(([id]) => id !== survivor)![1];
    expect(taken.length).toBeGreaterThan(0);
    // Orders that went to the killed member's partitions after it died: only the survivor could handle them.
    const orphaned = placed.filter((p) => p.at > killedAt && taken.includes(p.partition)).map((p) => p.orderId);
    expect(orphaned.length).toBeGreaterThan(0);
    expect(proc('ingress-b').child.exitCode).toBeNull();

    const all = [...firstIds, ...secondIds];
    const pgCounts = await waitUntil(
      `all ${all.length} orders CONFIRMED`,
      () => fromPostgres(all),
      (c) => c.status.CONFIRMED === all.length,
      { timeoutMs: 150_000 },
    );
    expect(pgCounts).toEqual({
      status: { CONFIRMED: all.length },
      chargedOnce: all.length,
      chargedTwice: [],
      sagas: all.length,
    });
    const t = await waitUntil(
      'every run completed in Temporal',
      () => fromTemporal(all),
      (c) => c.completed === all.length,
      { timeoutMs: 60_000 },
    );
    expect(t).toEqual({ runs: all.length, unexpected: [], notOnce: [], completed: all.length });
    const orphanStates = await fromPostgres(orphaned);
    expect(orphanStates.status).toEqual({ CONFIRMED: orphaned.length });
    // Each event handled once in the ledger; a record the killed member had not committed is redelivered and
    // found there (ALREADY_STARTED would mean a start raced a redelivery; neither starts a second run).
    const ledger = await db.query<{ outcome: string; n: string }>(
      'SELECT outcome, count(*) AS n FROM ingress.processed_events WHERE source_topic = $1 GROUP BY outcome',
      [scope.placed],
    );
    const outcomes = Object.fromEntries(ledger.rows.map((r) => [r.outcome, Number(r.n)]));
    expect((outcomes.STARTED ?? 0) + (outcomes.ALREADY_STARTED ?? 0)).toBe(all.length);
    // Every other process still runs: only the victim died.
    expect(processes.filter((p) => p !== victim && p.child.exitCode !== null).map((p) => p.name)).toEqual([]);
    console.log(
      `deployed processes: ${all.length} orders (${FIRST} + ${SECOND}, ${RESENT} re-sent), killed member held ` +
        `partitions ${taken.join(',')}; ${orphaned.length} orders reached them after the kill; ledger ${JSON.stringify(outcomes)}`,
    );
  });
});
