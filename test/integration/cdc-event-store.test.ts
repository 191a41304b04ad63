import { randomUUID } from 'node:crypto';

import type { DomainEvent } from '../../src/outbox/outbox-writer';
import type { OutboxService } from '../../src/outbox/outbox-constants';
import { OUTBOX_HEADERS } from '../../src/outbox/outbox-constants';
import type { EventStoreConsumer } from '../../src/event-store/event-store-consumer';
import { loadEventStoreConfig, startEventStoreConsumer } from '../../src/event-store/event-store-consumer';
import { rebuildOrderState } from '../../src/event-store/order-state';
import { replayToTopic } from '../../src/event-store/replay';
import { TOPICS } from '../../src/events/topics';
import type { CdcScope } from '../support/cdc-scope';
import { startCdcScope } from '../support/cdc-scope';
import { waitFor } from '../support/ingress-harness';
import { consumeUntil, kafkaClient } from '../support/stack';

jest.setTimeout(180_000);

const base = (eventType: string, orderId: string, occurredAt: number) => ({
  eventId: randomUUID(),
  eventType,
  eventVersion: 1,
  occurredAt,
  orderId,
});

/**
 * The events of a compensated order, each written by its service's outbox in its own transaction,
 * in the order the saga's steps run: placed, reserved, captured, then the payment fails to...
 * here: confirmation is refused, so the saga refunds, releases and fails the order.
 */
function compensatedOrder(orderId: string, t0: number) {
  const lines = [{ sku: 'SKU-TEAPOT', quantity: 2, unitPriceMinor: 1_250 }];
  const steps: { service: OutboxService; topic: string; event: DomainEvent & Record<string, unknown> }[] = [
    {
      service: 'orders',
      topic: TOPICS.orderPlaced,
      event: {
        ...base('order.placed', orderId, t0),
        eventVersion: 2,
        userId: 'cust-9',
        items: lines,
        totalMinor: 2_500,
        currency: 'EUR',
        paymentToken: 'tok_visa',
        isLoyaltyMember: false,
      },
    },
    {
      service: 'inventory',
      topic: TOPICS.stockReserved,
      event: { ...base('inventory.stock-reserved', orderId, t0 + 1_000), lines: [{ sku: 'SKU-TEAPOT', quantity: 2 }] },
    },
    {
      service: 'payments',
      topic: TOPICS.paymentCaptured,
      event: {
        ...base('payments.payment-captured', orderId, t0 + 2_000),
        chargeId: 'ch_1',
        amountMinor: 2_500,
        currency: 'EUR',
      },
    },
    {
      service: 'payments',
      topic: TOPICS.paymentRefunded,
      event: {
        ...base('payments.payment-refunded', orderId, t0 + 3_000),
        chargeId: 'ch_1',
        refundId: 're_1',
        amountMinor: 2_500,
        currency: 'EUR',
      },
    },
    {
      service: 'inventory',
      topic: TOPICS.stockReleased,
      event: { ...base('inventory.stock-released', orderId, t0 + 4_000), lines: [{ sku: 'SKU-TEAPOT', quantity: 2 }] },
    },
    {
      service: 'orders',
      topic: TOPICS.orderFailed,
      event: {
        ...base('order.failed', orderId, t0 + 5_000),
        customerId: 'cust-9',
        failureType: 'OrderNotPending',
        reason: 'confirmation refused',
      },
    },
  ];
  return steps;
}

describe('event store fed by the outbox through Debezium', () => {
  let scope: CdcScope;
  let consumer: EventStoreConsumer;
  beforeAll(async () => {
    scope = await startCdcScope('cdc_store');
    consumer = await startEventStoreConsumer(
      loadEventStoreConfig({
        ...process.env,
        KTS_EVENT_STORE_GROUP_ID: `${scope.prefix}.event-store`,
        KTS_EVENT_STORE_TOPIC_PREFIX: scope.prefix,
      }),
    );
  });
  afterAll(async () => {
    await consumer?.stop();
    await scope?.stop();
  });

  it('stores a compensated order once per event, in causal order, and rebuilds its state at three instants', async () => {
    const orderId = `ord-${randomUUID()}`;
    const t0 = Date.now() - 60_000;
    const steps = compensatedOrder(orderId, t0);
    for (const s of steps) {
      const db = await scope.admin.connect();
      await db.query('BEGIN');
      await scope.writer.append(db, s.service, { topic: s.topic, aggregateType: 'order', event: s.event });
      await db.query('COMMIT');
      db.release();
    }
    const stored = await waitFor(
      'all six events in the store',
      () => consumer.store.history(orderId),
      (h) => h.length >= steps.length,
    );
    expect(stored.map((e) => e.eventType)).toEqual(steps.map((s) => s.event.eventType));
    expect(stored.map((e) => e.eventId)).toEqual(steps.map((s) => s.event.eventId));

    // Publish every record a second time (as a Connect crash would): the store keeps one of each.
    const producer = kafkaClient().producer();
    await producer.connect();
    for (const s of steps)
      await replayToTopic(
        consumer.store,
        producer,
        { orderId, eventTypes: [s.event.eventType] },
        scope.writer.destination(s.topic),
      );
    await producer.disconnect();
    const marker = steps[0]!;
    await consumeUntil(
      scope.writer.destination(marker.topic),
      (m) => m.filter((x) => x.headers?.[OUTBOX_HEADERS.eventId]?.toString() === marker.event.eventId).length >= 2,
    );
    const again = await consumer.store.history(orderId);
    expect(again.map((e) => e.eventId)).toEqual(stored.map((e) => e.eventId));

    const at = (ms: number) => new Date(t0 + ms);
    const paid = rebuildOrderState(orderId, again, at(2_500));
    expect(paid).toMatchObject({
      status: 'PLACED',
      stock: 'RESERVED',
      payment: 'CAPTURED',
      paidMinor: 2_500,
      eventCount: 3,
    });
    const unwinding = rebuildOrderState(orderId, again, at(3_500));
    expect(unwinding).toMatchObject({
      status: 'PLACED',
      stock: 'RESERVED',
      payment: 'REFUNDED',
      paidMinor: 0,
      eventCount: 4,
    });
    const final = rebuildOrderState(orderId, again, at(10_000));
    expect(final).toMatchObject({
      status: 'FAILED',
      stock: 'RELEASED',
      payment: 'REFUNDED',
      paidMinor: 0,
      failure: { type: 'OrderNotPending', reason: 'confirmation refused' },
      eventCount: 6,
    });
  });

  it('replays a type and time range to a new topic for a new consumer', async () => {
    const orderId = `ord-${randomUUID()}`;
    const t0 = Date.now() - 30_000;
    for (const s of compensatedOrder(orderId, t0)) {
      const db = await scope.admin.connect();
      await db.query('BEGIN');
      await scope.writer.append(db, s.service, { topic: s.topic, aggregateType: 'order', event: s.event });
      await db.query('COMMIT');
      db.release();
    }
    await waitFor(
      'events stored',
      () => consumer.store.history(orderId),
      (h) => h.length >= 6,
    );
    const target = `${scope.prefix}.replay`;
    const producer = kafkaClient().producer();
    await producer.connect();
    const sent = await replayToTopic(
      consumer.store,
      producer,
      {
        orderId,
        eventTypes: ['inventory.stock-reserved', 'inventory.stock-released'],
        from: new Date(t0),
        to: new Date(t0 + 4_000),
      },
      target,
    );
    await producer.disconnect();
    expect(sent).toBe(2);
    const got = await consumeUntil(target, (m) => m.length >= 2);
    expect(got.map((m) => m.headers?.[OUTBOX_HEADERS.eventType]?.toString())).toEqual([
      'inventory.stock-reserved',
      'inventory.stock-released',
    ]);
    expect(got.every((m) => m.key?.toString() === orderId)).toBe(true);
  });
});
