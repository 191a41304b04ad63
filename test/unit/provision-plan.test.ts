import { EVENT_CATALOG } from '../../src/events/generated/event-schemas';
import { TOPICS } from '../../src/events/topics';
import type { PlanSettings, PlanStep, SubjectStep, TopicStep } from '../../src/provision/plan';
import { buildPlan, describeStep, formatMegabytes, MIGRATION_OWNERS } from '../../src/provision/plan';
import { loadProvisionSettings } from '../../src/provision/settings';
import { outOfOrder } from '../../src/provision/steps';
import { ROLE_NEEDS } from '../../src/provision/verify';
import { ORDER_SEARCH_ATTRIBUTES } from '../../src/shared/search-attributes';

const production: PlanSettings = {
  topicPrefix: '',
  replicationFactor: 1,
  minInsyncReplicas: 1,
  orderPartitions: 6,
  domainPartitions: 3,
  temporalNamespace: 'default',
  cdc: { connectorName: 'kts-outbox', publicationName: 'kts_outbox', heartbeatTopic: '_kts-outbox-heartbeat' },
};

const ofKind = <K extends PlanStep['kind']>(plan: PlanStep[], kind: K) =>
  plan.filter((s): s is Extract<PlanStep, { kind: K }> => s.kind === kind);

describe('the provisioning plan', () => {
  const plan = buildPlan(production);

  it('is data: the same settings give the same steps, each with its own id, and no secret in it', () => {
    expect(buildPlan(production)).toEqual(plan);
    expect(new Set(plan.map((s) => s.id)).size).toBe(plan.length);
    expect(JSON.stringify(plan)).not.toMatch(/password/i);
    for (const step of plan) expect(describeStep(step)).not.toMatch(/password|postgres:\/\//i);
  });

  it('orders the kinds so each step finds what it needs: migrations, login roles, topics, subjects, attributes, WAL limit, publication, connector', () => {
    const kinds = plan.map((s) => s.kind).filter((k, i, all) => all[i - 1] !== k);
    expect(kinds).toEqual([
      'migrations',
      'login-role',
      'topic',
      'subject',
      'search-attributes',
      'postgres-setting',
      'publication',
      'connector',
    ]);
  });

  it("gives the outbox cleaner a login role of its own with SELECT and DELETE on each service's outbox, nothing else", () => {
    expect(ofKind(plan, 'login-role')).toEqual([
      {
        kind: 'login-role',
        id: 'login-role:kts_outbox_cleaner',
        owner: 'outbox_cleaner',
        role: 'kts_outbox_cleaner',
        grants: ['orders', 'inventory', 'payments', 'notifications', 'loyalty'].map((schema) => ({
          schema,
          table: 'outbox',
          privileges: ['SELECT', 'DELETE'],
        })),
      },
    ]);
    // Not a schema owner: it owns nothing it could grant itself more from.
    expect(ofKind(plan, 'migrations').map((m) => m.role)).not.toContain('kts_outbox_cleaner');
  });

  it('bounds the WAL a stalled slot keeps: max_slot_wal_keep_size, 4GB unless declared, only with CDC', () => {
    expect(ofKind(plan, 'postgres-setting')).toEqual([
      {
        kind: 'postgres-setting',
        id: 'postgres-setting:max_slot_wal_keep_size',
        name: 'max_slot_wal_keep_size',
        megabytes: 4096,
      },
    ]);
    expect(describeStep(ofKind(plan, 'postgres-setting')[0]!)).toBe('PostgreSQL max_slot_wal_keep_size = 4GB');
    const declared = ofKind(buildPlan({ ...production, maxSlotWalKeepSizeMb: 1536 }), 'postgres-setting');
    expect(declared.map((s) => [s.megabytes, describeStep(s)])).toEqual([
      [1536, 'PostgreSQL max_slot_wal_keep_size = 1536MB'],
    ]);
    const unlimited = ofKind(buildPlan({ ...production, maxSlotWalKeepSizeMb: -1 }), 'postgres-setting');
    expect(unlimited.map(describeStep)).toEqual(['PostgreSQL max_slot_wal_keep_size = -1 (unlimited)']);
    // No CDC, no slot: nothing to bound.
    expect(ofKind(buildPlan({ ...production, cdc: null }), 'postgres-setting')).toEqual([]);
    expect(formatMegabytes(2 * 1024 * 1024)).toBe('2TB');
  });

  it('takes the limit from KTS_PG_MAX_SLOT_WAL_KEEP_SIZE as PostgreSQL writes sizes, refusing anything else', () => {
    const mb = (v?: string) =>
      loadProvisionSettings(v === undefined ? {} : { KTS_PG_MAX_SLOT_WAL_KEEP_SIZE: v }).plan.maxSlotWalKeepSizeMb;
    expect([mb(), mb('4GB'), mb('512MB'), mb('2 gb'), mb('1TB'), mb('-1')]).toEqual([
      4096,
      4096,
      512,
      2048,
      1024 * 1024,
      -1,
    ]);
    for (const bad of ['0MB', '4G', '4096', 'lots', '1.5GB']) {
      expect(() => mb(bad)).toThrow(/KTS_PG_MAX_SLOT_WAL_KEEP_SIZE: a size like 4GB/);
    }
  });

  it("migrates every owner's schema: the services, the card gateway, the ingress ledger, the event store, the CDC heartbeat", () => {
    expect(ofKind(plan, 'migrations').map((s) => [s.schema, s.role])).toEqual([
      ['orders', 'kts_orders'],
      ['inventory', 'kts_inventory'],
      ['payments', 'kts_payments'],
      ['notifications', 'kts_notifications'],
      ['card_gateway', 'kts_card_gateway'],
      ['loyalty', 'kts_loyalty'],
      ['ingress', 'kts_ingress'],
      ['event_store', 'kts_event_store'],
      ['kts_cdc', 'kts_cdc'],
    ]);
  });

  it('declares every topic with its partitions and replication, the order topics with dead letters alike', () => {
    const topics = Object.fromEntries(ofKind(plan, 'topic').map((t: TopicStep) => [t.topic, t]));
    expect(Object.keys(topics).sort()).toEqual(
      [
        ...Object.values(TOPICS),
        'order.placed.dlq',
        'order.cancelled.dlq',
        'loyalty.dlq',
        '_kts-outbox-heartbeat',
      ].sort(),
    );
    expect(topics['order.placed']).toMatchObject({ partitions: 6, replicationFactor: 1, minInsyncReplicas: 1 });
    expect(topics['order.placed.dlq']).toMatchObject({ partitions: 6, deadLetterOf: 'order.placed' });
    expect(topics['order.cancelled.dlq']).toMatchObject({ partitions: 6, deadLetterOf: 'order.cancelled' });
    expect(topics['inventory.stock-reserved']).toMatchObject({ partitions: 3, replicationFactor: 1 });
    // The loyalty consumer's own dead letters, partitioned like the domain topics it reads.
    expect(topics['loyalty.dlq']).toMatchObject({ partitions: 3, deadLetterOf: 'the loyalty consumer' });
    const rf3 = buildPlan({ ...production, replicationFactor: 3, minInsyncReplicas: 2 });
    expect(ofKind(rf3, 'topic').every((t) => t.replicationFactor === 3 && t.minInsyncReplicas === 2)).toBe(true);
    expect(describeStep(topics['order.placed']!)).toBe('topic order.placed (6 partitions, replication 1, min ISR 1)');
  });

  it('declares a BACKWARD subject per event topic with every schema file in file order', () => {
    const subjects = ofKind(plan, 'subject');
    expect(subjects.map((s) => s.subject)).toEqual(Object.values(TOPICS).map((t) => `${t}-value`));
    expect(subjects.every((s: SubjectStep) => s.compatibility === 'BACKWARD')).toBe(true);
    expect(subjects.find((s) => s.subject === 'order.placed-value')?.files).toEqual([
      'order-placed-v1.avsc',
      'order-placed-v2.avsc',
    ]);
    // Every schema file is registered somewhere, exactly once.
    expect(subjects.flatMap((s) => s.files).sort()).toEqual(EVENT_CATALOG.map((e) => e.file).sort());
  });

  it("registers the saga's search attributes in the configured namespace", () => {
    const [sa] = ofKind(buildPlan({ ...production, temporalNamespace: 'shop' }), 'search-attributes');
    expect(sa?.namespace).toBe('shop');
    expect(sa?.attributes).toEqual(ORDER_SEARCH_ATTRIBUTES.map((k) => ({ name: k.name, type: k.type })));
  });

  it('prefixes every topic and subject of a scope, and leaves CDC out when asked', () => {
    const scoped = buildPlan({ ...production, topicPrefix: 't1', cdc: null });
    expect(ofKind(scoped, 'topic').every((t) => t.topic.startsWith('t1.'))).toBe(true);
    // The scope's own subjects, then the canonical ones its outbox writers frame events with.
    const canonical = Object.values(TOPICS).map((t) => `${t}-value`);
    expect(ofKind(scoped, 'subject').map((s) => s.subject)).toEqual([...canonical.map((c) => `t1.${c}`), ...canonical]);
    expect(scoped.some((s) => s.kind === 'publication' || s.kind === 'connector')).toBe(false);
    expect(scoped.some((s) => s.kind === 'postgres-setting')).toBe(false);
    expect(ofKind(scoped, 'migrations').some((m) => m.schema === 'kts_cdc')).toBe(false);
  });

  it('can be narrowed to some kinds and topics (a test scope)', () => {
    const narrow = buildPlan({ ...production, include: ['topic', 'subject'], topics: [TOPICS.orderPlaced] });
    expect(narrow.map((s) => s.id)).toEqual([
      'topic:order.placed',
      'topic:order.placed.dlq',
      'topic:_kts-outbox-heartbeat',
      'subject:order.placed-value',
    ]);
  });
});

describe('subject order', () => {
  const files = ['order-placed-v1.avsc', 'order-placed-v2.avsc'];
  it.each([
    [[1, 2], undefined],
    [[null, null], undefined],
    [[1, null], undefined],
    [[2, 1], 'versions 2, 1 are not in file order'],
    [[null, 1], 'order-placed-v1.avsc is missing while a later file is registered'],
  ] as [(number | null)[], string | undefined][])('versions %j → %s', (versions, problem) => {
    expect(outOfOrder({ files }, versions)).toBe(problem);
  });
});

describe('what each role verifies', () => {
  const plan = buildPlan(production);
  const schemas = new Set(ofKind(plan, 'migrations').map((m) => m.owner));
  const topics = new Set(ofKind(plan, 'topic').map((t) => t.topic));
  const subjects = new Set(ofKind(plan, 'subject').map((s) => s.subject));

  const grants = new Set(
    ofKind(plan, 'login-role').flatMap((r) =>
      r.grants.flatMap((g) => g.privileges.map((p) => `${p} ${g.schema}.${g.table}`)),
    ),
  );

  it.each(Object.entries(ROLE_NEEDS))('%s needs only what the plan provides', (_role, needs) => {
    for (const s of needs.schemas) expect(schemas).toContain(s);
    for (const g of needs.tables) for (const p of g.privileges) expect(grants).toContain(`${p} ${g.schema}.${g.table}`);
    for (const t of needs.consumes) expect(topics).toContain(t);
    for (const t of needs.writes) expect(subjects).toContain(`${t}-value`);
  });

  it.each(Object.entries(ROLE_NEEDS))('%s finds the subjects it verifies in a scoped plan too', (_role, needs) => {
    const scoped = new Set(ofKind(buildPlan({ ...production, topicPrefix: 's1' }), 'subject').map((s) => s.subject));
    for (const t of needs.writes) expect(scoped).toContain(`${t}-value`);
  });

  it('gives every service worker its own schema only (payments also the card gateway it calls)', () => {
    expect(ROLE_NEEDS.orders.schemas).toEqual(['orders']);
    expect(ROLE_NEEDS.inventory.schemas).toEqual(['inventory']);
    expect(ROLE_NEEDS.payments.schemas).toEqual(['payments', 'card_gateway']);
    expect(ROLE_NEEDS.notifications.schemas).toEqual(['notifications']);
    expect(ROLE_NEEDS.saga.schemas).toEqual([]);
    // The outbox cleaner logs in as none of the services: it needs only its grants on the outboxes.
    expect(ROLE_NEEDS.outboxCleaner.schemas).toEqual([]);
    expect(ROLE_NEEDS.outboxCleaner.tables.map((g) => `${g.schema}.${g.table}`)).toEqual([
      'orders.outbox',
      'inventory.outbox',
      'payments.outbox',
      'notifications.outbox',
      'loyalty.outbox',
    ]);
    // The loyalty service is choreographed: its own schema, the order events it reacts to, its own events.
    expect(ROLE_NEEDS.loyalty.schemas).toEqual(['loyalty']);
    expect(ROLE_NEEDS.loyalty.consumes).toEqual(['order.confirmed', 'order.failed', 'payments.payment-refunded']);
    expect(MIGRATION_OWNERS.map((o) => o.owner)).toEqual(expect.arrayContaining(['ingress', 'event_store', 'cdc']));
  });
});
