/**
 * The choreographed loyalty service on the real stack: Kafka, the schema registry, PostgreSQL (its own
 * schema and role) and Debezium (its outbox, through this file's own connector). The service runs as
 * a child process (its real entry point, `src/services/loyalty/loyalty-main.ts`) in this file's
 * scope; order events are produced to the scope's topics as the orders and payments services'
 * connector would publish them, Avro-framed with the registry's ids.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';

import type { KafkaMessage, Producer } from 'kafkajs';
import pg from 'pg';

import type { RoleProcess } from '../../src/app/role-process';
import { spawnRoleProcess } from '../../src/app/role-process';
import { createProducer } from '../../src/config/clients';
import type {
  OrderConfirmedV1,
  OrderConfirmedV2,
  OrderFailedV1,
  PaymentsPaymentRefundedV1,
} from '../../src/events/generated/event-schemas';
import { TOPICS } from '../../src/events/topics';
import { DLQ_HEADERS } from '../../src/ingress/dead-letter';
import { prefixedTopic } from '../../src/outbox/outbox-constants';
import { LOYALTY_DEAD_LETTER_TOPIC, pointsFor } from '../../src/services/loyalty/loyalty-events';
import type { CdcScope } from '../support/cdc-scope';
import { startCdcScope } from '../support/cdc-scope';
import { provisionScope } from '../support/provision-scope';
import { consumeUntil, endpoints, kafkaClient, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(180_000);

const root = path.join(__dirname, '..', '..');
const ENTRY = 'src/services/loyalty/loyalty-main.ts';

let cdc: CdcScope;
let prefix: string;
let producer: Producer;
let loyalty: RoleProcess;
let starts = 0;
const db = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 4 });

function startLoyalty(): RoleProcess {
  starts += 1;
  const p = spawnRoleProcess(
    `loyalty-${starts}`,
    ENTRY,
    // Port 0: its own /metrics port. A short session timeout: after a kill -9 the group hands the
    // partitions to the restarted member soon (the default waits 30 s for the dead one).
    {
      ...process.env,
      KTS_SCOPE: prefix,
      LOG_LEVEL: 'info',
      KTS_METRICS_PORT: '0',
      KTS_LOYALTY_SESSION_TIMEOUT_MS: '6000',
    },
    path.join(root, '.stack', 'logs', 'loyalty-tests', `${prefix}-${starts}.log`),
    'loyalty running',
  );
  return p;
}

const topic = (t: string) => prefixedTopic(prefix, t);

async function send(t: string, key: string, value: Buffer): Promise<void> {
  await producer.send({ topic: topic(t), acks: -1, messages: [{ key, value }] });
}

function confirmed(orderId: string, customerId: string, totalMinor: number, member: boolean): OrderConfirmedV2 {
  return {
    eventId: randomUUID(),
    eventType: 'order.confirmed',
    eventVersion: 2,
    occurredAt: Date.now(),
    orderId,
    customerId,
    totalMinor,
    currency: 'EUR',
    isLoyaltyMember: member,
  };
}

const encode = (canonicalTopic: string, event: { eventType: string; eventVersion: number }) =>
  cdc.codec.encode(canonicalTopic, event);

interface OrderPoints {
  awarded: number;
  revoked: number;
  undoneBy: string | null;
}

async function orderPoints(orderId: string): Promise<OrderPoints | undefined> {
  const { rows } = await db.query<{ awarded_points: string; revoked_points: string; undone_by: string | null }>(
    'SELECT awarded_points, revoked_points, undone_by FROM loyalty.order_points WHERE order_id = $1',
    [orderId],
  );
  const r = rows[0];
  return r && { awarded: Number(r.awarded_points), revoked: Number(r.revoked_points), undoneBy: r.undone_by };
}

async function balance(customerId: string): Promise<number> {
  const { rows } = await db.query<{ points: string }>('SELECT points FROM loyalty.balances WHERE customer_id = $1', [
    customerId,
  ]);
  return rows[0] ? Number(rows[0].points) : 0;
}

async function processed(orderId: string): Promise<{ eventType: string; outcome: string }[]> {
  const { rows } = await db.query<{ event_type: string; outcome: string }>(
    'SELECT event_type, outcome FROM loyalty.processed_events WHERE order_id = $1 ORDER BY processed_at, event_type',
    [orderId],
  );
  return rows.map((r) => ({ eventType: r.event_type, outcome: r.outcome }));
}

/** The loyalty outbox rows of an order (what Debezium publishes), by event type. */
async function outboxTypes(orderId: string): Promise<string[]> {
  const { rows } = await db.query<{ type: string }>(
    'SELECT type FROM loyalty.outbox WHERE aggregateid = $1 AND topic LIKE $2 ORDER BY created_at',
    [orderId, `${prefix}.%`],
  );
  return rows.map((r) => r.type);
}

/** Decoded events of one of the scope's loyalty topics, once `orderIds` all have one. */
async function published(t: string, orderIds: string[]): Promise<Record<string, unknown>[]> {
  const decode = async (m: KafkaMessage) => {
    const r = await cdc.codec.decodeEvent(m.value);
    if (!r.ok) throw new Error(`undecodable record on ${t}: ${r.reason}`);
    return r.event;
  };
  const keys = (ms: KafkaMessage[]) => new Set(ms.map((m) => m.key?.toString()));
  const messages = await consumeUntil(topic(t), (ms) => orderIds.every((id) => keys(ms).has(id)), 90_000);
  const events = await Promise.all(messages.map(decode));
  return events.filter((e) => orderIds.includes(e.orderId as string));
}

beforeAll(async () => {
  prefix = uniqueName('loyal');
  // Topics (with loyalty.dlq) and subjects of the scope, its own connector over the shared outbox tables.
  await provisionScope(prefix, { include: ['topic', 'subject'] });
  cdc = await startCdcScope('loyalty', { prefix });
  producer = createProducer(kafkaClient('loyalty-test'));
  await producer.connect();
  loyalty = startLoyalty();
  await loyalty.ready;
});

afterAll(async () => {
  await loyalty?.stop();
  await producer?.disconnect();
  await cdc?.stop();
  await db.end();
});

describe('loyalty service (choreographed, real Kafka, registry, PostgreSQL and Debezium)', () => {
  it('a member earns points exactly once although order.confirmed is delivered three times', async () => {
    const customer = uniqueName('member');
    const orderId = uniqueName('ord');
    const event = confirmed(orderId, customer, 12_345, true);
    const bytes = await encode(TOPICS.orderConfirmed, event);
    for (let i = 0; i < 3; i += 1) await send(TOPICS.orderConfirmed, orderId, bytes);

    const expected = pointsFor(event);
    expect(expected).toBe(123);
    await waitUntil(
      'the award',
      () => orderPoints(orderId),
      (p) => p?.awarded === expected,
    );
    const [awarded] = await published(TOPICS.loyaltyPointsAwarded, [orderId]);
    expect(awarded).toMatchObject({ orderId, customerId: customer, points: 123, sourceEventId: event.eventId });
    // Let the two redeliveries be handled too (they come after the first on the same partition).
    await waitUntil('the group to pass the three records', () => position(TOPICS.orderConfirmed), caughtUp);
    expect(await processed(orderId)).toEqual([{ eventType: 'order.confirmed', outcome: 'AWARDED' }]);
    expect(await balance(customer)).toBe(123);
    expect(await outboxTypes(orderId)).toEqual(['loyalty.points-awarded']);
  });

  it('a non-member earns nothing and nothing is published', async () => {
    const customer = uniqueName('guest');
    const orderId = uniqueName('ord');
    await send(
      TOPICS.orderConfirmed,
      orderId,
      await encode(TOPICS.orderConfirmed, confirmed(orderId, customer, 99_900, false)),
    );
    await waitUntil(
      'the decision',
      () => processed(orderId),
      (p) => p.length === 1,
    );
    expect(await processed(orderId)).toEqual([{ eventType: 'order.confirmed', outcome: 'NO_POINTS' }]);
    expect(await orderPoints(orderId)).toMatchObject({ awarded: 0 });
    expect(await balance(customer)).toBe(0);
    expect(await outboxTypes(orderId)).toEqual([]);
  });

  it('a refund revokes exactly what the order was awarded, once, whatever else undoes it later', async () => {
    const customer = uniqueName('member');
    const keep = uniqueName('ord');
    const refunded = uniqueName('ord');
    await send(
      TOPICS.orderConfirmed,
      keep,
      await encode(TOPICS.orderConfirmed, confirmed(keep, customer, 5_000, true)),
    );
    await send(
      TOPICS.orderConfirmed,
      refunded,
      await encode(TOPICS.orderConfirmed, confirmed(refunded, customer, 2_599, true)),
    );
    await waitUntil(
      'both awards',
      () => balance(customer),
      (b) => b === 50 + 25,
    );

    // The refund's amount is the payment's; the points taken back are the ones recorded, never recomputed.
    const refund: PaymentsPaymentRefundedV1 = {
      eventId: randomUUID(),
      eventType: 'payments.payment-refunded',
      eventVersion: 1,
      occurredAt: Date.now(),
      orderId: refunded,
      chargeId: `ch-${refunded}`,
      refundId: `rf-${refunded}`,
      amountMinor: 2_599,
      currency: 'EUR',
    };
    const failed: OrderFailedV1 = {
      eventId: randomUUID(),
      eventType: 'order.failed',
      eventVersion: 1,
      occurredAt: Date.now(),
      orderId: refunded,
      customerId: customer,
      failureType: 'NotificationFailed',
      reason: 'unwound after the pivot',
    };
    const refundBytes = await encode(TOPICS.paymentRefunded, refund);
    await send(TOPICS.paymentRefunded, refunded, refundBytes);
    await send(TOPICS.paymentRefunded, refunded, refundBytes); // redelivered
    await waitUntil(
      'the revocation',
      () => orderPoints(refunded),
      (p) => p?.revoked === 25,
    );
    await send(TOPICS.orderFailed, refunded, await encode(TOPICS.orderFailed, failed));
    await waitUntil(
      'the order.failed decision',
      () => processed(refunded),
      (p) => p.length === 3,
    );

    expect(await processed(refunded)).toEqual([
      { eventType: 'order.confirmed', outcome: 'AWARDED' },
      { eventType: 'payments.payment-refunded', outcome: 'REVOKED' },
      { eventType: 'order.failed', outcome: 'ALREADY_UNDONE' },
    ]);
    expect(await orderPoints(refunded)).toEqual({ awarded: 25, revoked: 25, undoneBy: 'payments.payment-refunded' });
    expect(await balance(customer)).toBe(50);
    expect(await outboxTypes(refunded)).toEqual(['loyalty.points-awarded', 'loyalty.points-revoked']);
    const [revoked] = await published(TOPICS.loyaltyPointsRevoked, [refunded]);
    expect(revoked).toMatchObject({
      orderId: refunded,
      customerId: customer,
      points: 25,
      reason: 'payments.payment-refunded',
      sourceEventId: refund.eventId,
    });
  });

  it('an undo that overtakes its confirmation (another topic) leaves the order earning nothing', async () => {
    const customer = uniqueName('member');
    const orderId = uniqueName('ord');
    const refund: PaymentsPaymentRefundedV1 = {
      eventId: randomUUID(),
      eventType: 'payments.payment-refunded',
      eventVersion: 1,
      occurredAt: Date.now(),
      orderId,
      chargeId: `ch-${orderId}`,
      refundId: `rf-${orderId}`,
      amountMinor: 7_000,
      currency: 'EUR',
    };
    await send(TOPICS.paymentRefunded, orderId, await encode(TOPICS.paymentRefunded, refund));
    await waitUntil(
      'the refund',
      () => processed(orderId),
      (p) => p.length === 1,
    );
    await send(
      TOPICS.orderConfirmed,
      orderId,
      await encode(TOPICS.orderConfirmed, confirmed(orderId, customer, 7_000, true)),
    );
    await waitUntil(
      'the confirmation',
      () => processed(orderId),
      (p) => p.length === 2,
    );
    expect((await processed(orderId)).map((p) => p.outcome)).toEqual(['NOTHING_TO_REVOKE', 'UNDONE_BEFORE_CONFIRMED']);
    expect(await balance(customer)).toBe(0);
    expect(await outboxTypes(orderId)).toEqual([]);
  });

  it('a v1 order.confirmed (no membership field) is upcast and handled: no points, nothing dead-lettered', async () => {
    const customer = uniqueName('old');
    const orderId = uniqueName('ord');
    const v1: OrderConfirmedV1 = {
      eventId: randomUUID(),
      eventType: 'order.confirmed',
      eventVersion: 1,
      occurredAt: Date.now(),
      orderId,
      customerId: customer,
      totalMinor: 10_000,
      currency: 'EUR',
    };
    await send(TOPICS.orderConfirmed, orderId, await encode(TOPICS.orderConfirmed, v1));
    await waitUntil(
      'the v1 event',
      () => processed(orderId),
      (p) => p.length === 1,
    );
    expect(await processed(orderId)).toEqual([{ eventType: 'order.confirmed', outcome: 'NO_POINTS' }]);
    expect(await orderPoints(orderId)).toMatchObject({ awarded: 0 });
  });

  it('poison goes to the loyalty dead-letter topic with reason headers, and the partition moves on', async () => {
    const orderId = uniqueName('ord');
    const customer = uniqueName('member');
    const badCurrency = { ...confirmed(orderId, customer, 1_000, true), currency: 'XXX' };
    await send(TOPICS.orderConfirmed, orderId, Buffer.from('not avro at all'));
    await send(TOPICS.orderConfirmed, orderId, await encode(TOPICS.orderConfirmed, badCurrency));
    // Same key, so same partition, after the poison: handled once the partition moved on.
    await send(
      TOPICS.orderConfirmed,
      orderId,
      await encode(TOPICS.orderConfirmed, confirmed(orderId, customer, 1_000, true)),
    );
    await waitUntil(
      'the good event behind the poison',
      () => balance(customer),
      (b) => b === 10,
    );

    const dlq = topic(LOYALTY_DEAD_LETTER_TOPIC);
    const letters = (
      await consumeUntil(dlq, (ms) => ms.filter((m) => m.key?.toString() === orderId).length >= 2)
    ).filter((m) => m.key?.toString() === orderId);
    const header = (m: KafkaMessage, name: string) => m.headers?.[name]?.toString();
    expect(letters.map((m) => [header(m, DLQ_HEADERS.reason), header(m, DLQ_HEADERS.errorType)])).toEqual([
      ['WrongMagicByte', 'WireFormat'],
      ['InvalidContent', 'Validation'],
    ]);
    for (const m of letters) {
      expect(header(m, DLQ_HEADERS.originalTopic)).toBe(topic(TOPICS.orderConfirmed));
      expect(header(m, DLQ_HEADERS.consumerGroup)).toBe(`${prefix}.loyalty`);
      expect(header(m, DLQ_HEADERS.originalOffset)).toMatch(/^\d+$/);
      expect(header(m, DLQ_HEADERS.deadLetteredAt)).toBeTruthy();
    }
    expect(header(letters[1]!, DLQ_HEADERS.errorMessage)).toContain('currency');
    expect(letters[0]!.value?.toString()).toBe('not avro at all');
  });

  it('killed with kill -9 mid-batch and restarted: every member order is awarded exactly once', async () => {
    const ORDERS = 150;
    const customer = uniqueName('member');
    const orderIds = Array.from({ length: ORDERS }, () => uniqueName('ord'));
    const messages = await Promise.all(
      orderIds.map(async (id) => ({
        key: id,
        value: await encode(TOPICS.orderConfirmed, confirmed(id, customer, 1_000, true)),
      })),
    );
    const before = await position(TOPICS.orderConfirmed);
    // Each event three times: redelivery on top of the crash.
    await producer.send({
      topic: topic(TOPICS.orderConfirmed),
      acks: -1,
      messages: [...messages, ...messages, ...messages],
    });
    const count = async () => {
      const { rows } = await db.query<{ n: string }>(
        'SELECT count(*) AS n FROM loyalty.processed_events WHERE order_id = ANY($1)',
        [orderIds],
      );
      return Number(rows[0]!.n);
    };
    await waitUntil('a part of the load to be handled', count, (n) => n >= 20, { timeoutMs: 60_000 });
    loyalty.child.kill('SIGKILL');
    await loyalty.exited;
    const handledAtKill = await count();
    const atKill = await position(TOPICS.orderConfirmed);

    loyalty = startLoyalty();
    await loyalty.ready;
    await waitUntil('every order', count, (n) => n === ORDERS, { timeoutMs: 120_000 });
    await waitUntil('the group to pass every record', () => position(TOPICS.orderConfirmed), caughtUp);

    const { rows } = await db.query<{ outcome: string; n: string }>(
      'SELECT outcome, count(*) AS n FROM loyalty.processed_events WHERE order_id = ANY($1) GROUP BY outcome',
      [orderIds],
    );
    expect(rows.map((r) => [r.outcome, Number(r.n)])).toEqual([['AWARDED', ORDERS]]);
    expect(await balance(customer)).toBe(ORDERS * 10);
    const { rows: outbox } = await db.query<{ n: string }>(
      "SELECT count(*) AS n FROM loyalty.outbox WHERE aggregateid = ANY($1) AND type = 'loyalty.points-awarded'",
      [orderIds],
    );
    expect(Number(outbox[0]!.n)).toBe(ORDERS);
    // Killed mid-load: some orders handled, others not yet; the restarted member did the rest once.
    console.log(
      `kill -9 after ${handledAtKill} of ${ORDERS} orders handled; the group had committed ` +
        `${atKill.committed} of ${atKill.end} records of the topic`,
    );
    expect(handledAtKill).toBeLessThan(ORDERS);
    // A committed record stands for at most one order: more orders handled than records of the load
    // committed means some were handled but not committed at the kill, i.e. delivered again after it.
    expect(atKill.committed - before.committed).toBeLessThan(handledAtKill);
  });
});

/** The loyalty group's committed offsets and the end offsets of one of the scope's topics, summed over partitions. */
async function position(t: string): Promise<{ committed: number; end: number }> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId: `${prefix}.loyalty`, topics: [topic(t)] });
    const ends = await admin.fetchTopicOffsets(topic(t));
    return {
      committed: (offsets?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0),
      end: ends.reduce((sum, p) => sum + Number(p.high), 0),
    };
  } finally {
    await admin.disconnect();
  }
}

const caughtUp = (p: { committed: number; end: number }) => p.committed === p.end;
