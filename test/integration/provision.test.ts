/**
 * `npm run provision` against the real servers: a fresh scope (its own topics, subjects, connector,
 * slot and publication; a fresh database for the migrations; a private Temporal for the search
 * attributes) is provisioned twice and the second run changes nothing; subjects hold their versions
 * in file order under BACKWARD; processes started before provisioning fail with one line; and a
 * Confluent-style producer that writes with the subject's latest version is read the same way by the
 * real ingress and the real event store.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { Connection } from '@temporalio/client';
import avro from 'avsc';
import pg from 'pg';

import { connectorStatus, removeOutboxConnector } from '../../src/cdc/outbox-connector';
import { placedEvent } from '../../src/cli/order-events';
import { scopeNames } from '../../src/config/scope';
import type { EventStoreConsumer } from '../../src/event-store/event-store-consumer';
import { startEventStoreConsumer } from '../../src/event-store/event-store-consumer';
import { EventCodec } from '../../src/events/codec';
import type { OrderPlacedV2 } from '../../src/events/generated/event-schemas';
import { orderPlacedV1Avsc, orderPlacedV2Avsc } from '../../src/events/generated/event-schemas';
import type { Ingress } from '../../src/ingress/app';
import { RegistryClient } from '../../src/kafka/registry-client';
import { buildPlan } from '../../src/provision/plan';
import { runProvision } from '../../src/provision/run';
import type { ProvisionSettings } from '../../src/provision/settings';
import { loadProvisionSettings } from '../../src/provision/settings';
import { verifySchema } from '../../src/provision/verify';
import { ORDER_SEARCH_ATTRIBUTES } from '../../src/shared/search-attributes';
import type { IngressScope } from '../support/ingress-harness';
import { db, scopeEnv, startScopedIngress, startStubSagaWorker, terminateScopeSagas } from '../support/ingress-harness';
import { PrivateTemporal } from '../support/private-temporal';
import { allSettings, cdcTargetOf, testSettings } from '../support/settings';
import { endpoints, kafkaClient, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(600_000);

const ROOT = path.join(__dirname, '..', '..');
const registry = new RegistryClient(endpoints.registryUrl);

/** Provisioning settings of a scope, as `KTS_SCOPE=<prefix> npm run provision` reads them. */
function scopeSettings(prefix: string, env: Record<string, string> = {}): ProvisionSettings {
  return loadProvisionSettings({ ...process.env, KTS_SCOPE: prefix, ...env });
}

function ingressScope(prefix: string): IngressScope {
  const names = scopeNames(prefix);
  return {
    prefix,
    placed: names.topics.orderPlaced,
    cancelled: names.topics.orderCancelled,
    groupId: names.groups.ingress,
    taskQueuePrefix: prefix,
  };
}

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

/** Runs an entry point as its own process until it exits; its stderr, trimmed. */
function runEntryPoint(file: string, env: NodeJS.ProcessEnv): { code: number | null; stderr: string } {
  const res = spawnSync(process.execPath, ['--import', 'tsx', file], {
    cwd: ROOT,
    env: { ...env, LOG_LEVEL: 'silent', KTS_METRICS_PORT: '0' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: res.status, stderr: res.stderr.trim() };
}

afterAll(async () => {
  await db.end();
});

describe('provisioning a fresh scope', () => {
  const prefix = uniqueName('prov');
  const database = uniqueName('prov_db');
  let temporal: PrivateTemporal;
  let settings: ProvisionSettings;
  const admin = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 2 });

  beforeAll(async () => {
    temporal = await PrivateTemporal.create();
    await temporal.start();
    await admin.query(`CREATE DATABASE ${database}`);
    settings = scopeSettings(prefix);
    // The migrations go to a database of their own, so their first run really applies everything.
    const dbUrl = new URL(settings.targets.adminUrl);
    dbUrl.pathname = `/${database}`;
    settings = {
      plan: settings.plan,
      targets: {
        ...settings.targets,
        temporal: {
          ...settings.targets.temporal,
          connection: { ...settings.targets.temporal.connection, address: temporal.address },
        },
      },
    };
    migrationsTargets = { ...settings.targets, adminUrl: dbUrl.toString() };
  });
  let migrationsTargets: ProvisionSettings['targets'];

  afterAll(async () => {
    const o = settings?.targets.connector;
    if (o) await removeOutboxConnector(cdcTargetOf(), o);
    await temporal?.stop();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  it('applies every migration on the first run and none on the second', async () => {
    const plan = buildPlan({ ...settings.plan, include: ['migrations'] });
    const first = await runProvision(plan, migrationsTargets);
    expect(first.steps.map((s) => [s.step.id, s.outcome])).toEqual(plan.map((s) => [s.id, 'changed']));
    expect(first.steps.find((s) => s.step.id === 'migrations:kts_cdc')?.detail).toBe(
      'applied 001_heartbeat, now at 001',
    );
    const second = await runProvision(plan, migrationsTargets);
    expect(second.steps.map((s) => s.outcome)).toEqual(plan.map(() => 'unchanged'));
    const check = await runProvision(plan, migrationsTargets, { mode: 'check' });
    expect(check.pending).toBe(0);
  });

  it('provisions topics, subjects, search attributes, publication and connector once; the second run changes nothing', async () => {
    const plan = buildPlan({
      ...settings.plan,
      include: ['topic', 'subject', 'search-attributes', 'publication', 'connector'],
    });
    // The canonical subjects a scope shares with production (its outbox writers frame with their ids)
    // were provisioned by `stack up`; everything else is the scope's own and new.
    const shared = new Set(buildPlan({ ...settings.plan, topicPrefix: '', include: ['subject'] }).map((s) => s.id));
    expect(plan.filter((s) => shared.has(s.id))).toHaveLength(shared.size);
    const before = await runProvision(plan, settings.targets, { mode: 'check' });
    expect(before.steps.filter((s) => s.outcome === 'missing').map((s) => s.step.id)).toEqual(
      plan.filter((s) => !shared.has(s.id)).map((s) => s.id),
    );

    const first = await runProvision(plan, settings.targets);
    expect(first.steps.map((s) => [s.step.id, s.outcome])).toEqual(
      plan.map((s) => [s.id, shared.has(s.id) ? 'unchanged' : 'changed']),
    );
    const second = await runProvision(plan, settings.targets);
    expect(second.steps.map((s) => [s.step.id, s.outcome])).toEqual(plan.map((s) => [s.id, 'unchanged']));
    expect(second.pending).toBe(0);
    expect((await runProvision(plan, settings.targets, { mode: 'check' })).pending).toBe(0);

    // What the first run made, read back from the servers.
    const kafkaAdmin = kafkaClient().admin();
    await kafkaAdmin.connect();
    try {
      const meta = await kafkaAdmin.fetchTopicMetadata({
        topics: [`${prefix}.order.placed`, `${prefix}.order.placed.dlq`, `${prefix}.order.confirmed`],
      });
      expect(Object.fromEntries(meta.topics.map((t) => [t.name, t.partitions.length]))).toEqual({
        [`${prefix}.order.placed`]: 6,
        [`${prefix}.order.placed.dlq`]: 6,
        [`${prefix}.order.confirmed`]: 3,
      });
    } finally {
      await kafkaAdmin.disconnect();
    }
    const status = await connectorStatus(endpoints.connectUrl, settings.targets.connector!.name);
    expect(status?.connector.state).toBe('RUNNING');
  });

  it('holds order.placed versions in file order under BACKWARD, so "latest" is v2', async () => {
    const subject = `${prefix}.order.placed-value`;
    expect(await registry.subjectCompatibility(subject)).toBe('BACKWARD');
    expect(await registry.versions(subject)).toEqual([1, 2]);
    const v1 = await registry.version(subject, 1);
    const v2 = await registry.version(subject, 2);
    const latest = await registry.version(subject, 'latest');
    expect(JSON.parse(v1.schema)).toEqual(JSON.parse(JSON.stringify(orderPlacedV1Avsc)));
    expect(JSON.parse(v2.schema)).toEqual(JSON.parse(JSON.stringify(orderPlacedV2Avsc)));
    expect(latest).toEqual(v2);
  });

  it('registers the search attributes in the namespace of the private server', async () => {
    const connection = await Connection.connect({ address: temporal.address });
    try {
      const r = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      expect(Object.keys(r.customAttributes ?? {})).toEqual(
        expect.arrayContaining(ORDER_SEARCH_ATTRIBUTES.map((k) => k.name)),
      );
    } finally {
      await connection.close();
    }
  });

  it('tells a process whose schema is behind which version it is at and what to run', async () => {
    // One migration of the fresh database's orders schema forgotten, as after a deploy with a new one.
    const url = new URL(migrationsTargets.adminUrl);
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    const { rows } = await client.query<{ v: number }>('SELECT max(version) AS v FROM orders.schema_migrations');
    const newest = rows[0]!.v;
    await client.query('DELETE FROM orders.schema_migrations WHERE version = $1', [newest]);
    await client.end();
    const asOrders = new URL(url);
    asOrders.username = 'kts_orders';
    asOrders.password = migrationsTargets.passwords.orders;
    const pad = (n: number) => String(n).padStart(3, '0');
    await expect(verifySchema('orders', asOrders.toString())).rejects.toMatchObject({
      type: 'NotProvisioned',
      message: `orders schema at ${pad(newest - 1)}, expected ${pad(newest)}: run \`npm run provision\``,
    });
  });
});

describe('subjects registered out of file order by an older build', () => {
  it('are refused with the command that fixes them, then re-registered in order with their ids kept', async () => {
    const prefix = uniqueName('prov_order');
    const subject = `${prefix}.order.placed-value`;
    // What first-encode registration did: v2 met first, then v1.
    await registry.setCompatibility(subject, 'BACKWARD');
    const v2Id = await registry.register(subject, orderPlacedV2Avsc);
    const v1Id = await registry.register(subject, orderPlacedV1Avsc);
    expect(JSON.parse((await registry.version(subject, 'latest')).schema)).toEqual(
      JSON.parse(JSON.stringify(orderPlacedV1Avsc)),
    );
    const s = scopeSettings(prefix);
    const plan = buildPlan({ ...s.plan, cdc: null, include: ['subject'], topics: ['order.placed'] });
    const check = await runProvision(plan, s.targets, { mode: 'check' });
    expect(check.steps[0]?.detail).toMatch(/out of order: versions 2, 1 are not in file order/);
    await expect(runProvision(plan, s.targets)).rejects.toMatchObject({
      type: 'ProvisionDrift',
      message: expect.stringContaining('run `npm run provision -- --reorder-subjects` (schema ids are kept)') as string,
    });
    const fixed = await runProvision(plan, s.targets, { reorderSubjects: true });
    expect(fixed.steps[0]?.outcome).toBe('changed');
    expect(await registry.versions(subject)).toEqual([1, 2]);
    expect((await registry.version(subject, 1)).id).toBe(v1Id);
    expect((await registry.version(subject, 2)).id).toBe(v2Id);
    expect((await runProvision(plan, s.targets)).steps[0]?.outcome).toBe('unchanged');
  });
});

describe('a process started before provisioning', () => {
  it('the ingress fails fast with one line naming the command, and creates nothing', async () => {
    const scope = ingressScope(uniqueName('prov_early'));
    const r = runEntryPoint('src/ingress/main.ts', scopeEnv(scope));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`✖ kts-ingress: topic ${scope.placed} is missing (and 3 more): run \`npm run provision\``);
    const kafkaAdmin = kafkaClient().admin();
    await kafkaAdmin.connect();
    const topics = await kafkaAdmin.listTopics();
    await kafkaAdmin.disconnect();
    expect(topics.filter((t) => t.startsWith(scope.prefix))).toEqual([]);
  });

  it("a service worker without its role's credentials says which role cannot log in", () => {
    const r = runEntryPoint('src/services/orders/orders-worker.ts', {
      ...process.env,
      KTS_PG_URL_ORDERS: withPassword(allSettings.roles.orders.pgUrl, 'not-the-provisioned-password'),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('✖ kts-orders-worker: orders role kts_orders cannot log in: run `npm run provision`');
  });
});

describe('a Confluent-style producer with use.latest.version', () => {
  let ingress: Ingress | undefined;
  let worker: { stop(): Promise<void> } | undefined;
  let store: EventStoreConsumer | undefined;
  let scope: IngressScope | undefined;
  afterAll(async () => {
    await ingress?.stop();
    await worker?.stop();
    await store?.stop();
    if (scope) await terminateScopeSagas([scope]);
  });

  it('writes the v2 shape, which the real ingress and the real event store both accept', async () => {
    const prefix = uniqueName('prov_latest');
    scope = ingressScope(prefix);
    const s = scopeSettings(prefix);
    await runProvision(buildPlan({ ...s.plan, cdc: null, include: ['topic', 'subject'] }), s.targets);

    // The producer knows nothing of our schema files: it asks the registry for the subject's latest
    // version and writes its record with that schema and id (Confluent wire format).
    const latest = await registry.version(`${scope.placed}-value`, 'latest');
    const writer = avro.Type.forSchema(JSON.parse(latest.schema) as avro.Schema);
    const event: OrderPlacedV2 = { ...(placedEvent({ version: 2 }) as OrderPlacedV2), isLoyaltyMember: true };
    const header = Buffer.alloc(5);
    header.writeUInt32BE(latest.id, 1);
    const value = Buffer.concat([header, writer.toBuffer(event)]);
    // The bytes carry the loyalty flag: the latest schema is v2.
    expect((writer.fromBuffer(writer.toBuffer(event)) as OrderPlacedV2).isLoyaltyMember).toBe(true);
    const producer = kafkaClient().producer();
    await producer.connect();
    await producer.send({ topic: scope.placed, acks: -1, messages: [{ key: event.orderId, value }] });
    await producer.disconnect();

    // The shared decoding path reads it as written.
    const decoded = await new EventCodec(registry).decode(value, 'order.placed');
    expect(decoded).toMatchObject({ ok: true, value: { sourceVersion: 2, event: { isLoyaltyMember: true } } });

    worker = await startStubSagaWorker(scope);
    ingress = await startScopedIngress(scope);
    store = await startEventStoreConsumer(testSettings(['eventStore'], prefix));
    const outcome = await waitUntil(
      'the ingress ledger row',
      async () =>
        (
          await db.query<{ outcome: string }>('SELECT outcome FROM ingress.processed_events WHERE event_id = $1', [
            event.eventId,
          ])
        ).rows[0]?.outcome,
      (o) => o !== undefined,
    );
    expect(outcome).toBe('STARTED');
    const stored = await waitUntil(
      'the event store row',
      async () =>
        (
          await db.query<{ event_version: number; payload: OrderPlacedV2 }>(
            'SELECT event_version, payload FROM event_store.events WHERE event_id = $1',
            [event.eventId],
          )
        ).rows[0],
      (r) => r !== undefined,
    );
    expect(stored?.event_version).toBe(2);
    expect(stored?.payload.isLoyaltyMember).toBe(true);
    const rejected = await db.query('SELECT 1 FROM event_store.rejected_records WHERE source_topic = $1', [
      scope.placed,
    ]);
    expect(rejected.rowCount).toBe(0);
  });
});
