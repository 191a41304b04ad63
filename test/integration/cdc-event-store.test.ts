import { randomUUID } from 'node:crypto';

import { ApplicationFailure } from '@temporalio/common';

import type { EventStoreConsumer } from '../../src/event-store/event-store-consumer';
import { startEventStoreConsumer } from '../../src/event-store/event-store-consumer';
import { rebuildOrderState } from '../../src/event-store/order-state';
import { replayToTopic } from '../../src/event-store/replay';
import { TOPICS } from '../../src/events/topics';
import type { OutboxService } from '../../src/outbox/outbox-constants';
import { OUTBOX_HEADERS } from '../../src/outbox/outbox-constants';
import type { DomainEvent } from '../../src/outbox/outbox-writer';
import { FailureType } from '../../src/shared/saga-contract';
import type { CdcScope } from '../support/cdc-scope';
import { startCdcScope } from '../support/cdc-scope';
import type { SagaHarness } from '../support/saga-harness';
import { newOrder, openSagaHarness, stockedSku, withSagaWorkers } from '../support/saga-harness';
import { testSettings } from '../support/settings';
import { consumeUntil, kafkaClient, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

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
  let saga: SagaHarness;
  beforeAll(async () => {
    saga = await openSagaHarness();
    scope = await startCdcScope('cdc_store');
    consumer = await startEventStoreConsumer(testSettings(['eventStore'], scope.prefix));
  });
  afterAll(async () => {
    await consumer?.stop();
    await scope?.stop();
    await saga?.close();
  });

  it('stores a real compensated saga once per event, in causal order, and rebuilds its state at three instants', async () => {
    // The real saga and services, on this test's task queues, writing to this scope's outboxes.
    // Only confirmOrder is replaced: it is refused after the payment was captured, the path that
    // makes the saga unwind the most (refund, release, fail, tell the customer).
    const sku = await stockedSku(saga, 10);
    const order = newOrder(sku, 2);
    const total = 2 * 2_500;
    const { outcome, placedId } = await withSagaWorkers(
      saga,
      {
        outbox: scope.writer,
        override: () => ({
          orders: {
            confirmOrder: () =>
              Promise.reject(
                ApplicationFailure.nonRetryable('the order was changed meanwhile', FailureType.OrderNotPending),
              ),
          },
        }),
      },
      async (run) => {
        // What the HTTP API or an external producer does: order.placed, the saga's trigger.
        const placed = {
          eventId: randomUUID(),
          eventType: 'order.placed',
          eventVersion: 2,
          occurredAt: Date.now(),
          orderId: order.orderId,
          userId: order.customerId,
          items: order.items,
          totalMinor: total,
          currency: order.currency,
          paymentToken: order.paymentToken,
          isLoyaltyMember: false,
        };
        const db = await scope.admin.connect();
        try {
          await db.query('BEGIN');
          await scope.writer.append(db, 'orders', { topic: TOPICS.orderPlaced, aggregateType: 'order', event: placed });
          await db.query('COMMIT');
        } finally {
          db.release();
        }
        const handle = await run.start(order);
        return { outcome: (await handle.result()).outcome, placedId: placed.eventId };
      },
    );
    expect(outcome).toBe('FAILED');

    const chain = [
      'order.placed',
      'notifications.notification-sent',
      'inventory.stock-reserved',
      'payments.payment-captured',
      'payments.payment-refunded',
      'inventory.stock-released',
      'order.failed',
      'notifications.notification-sent',
    ];
    const orderId = order.orderId;
    const stored = await waitUntil(
      'the whole chain in the store',
      () => consumer.store.history(orderId),
      (h) => h.length >= chain.length,
    );
    expect(stored.map((e) => e.eventType)).toEqual(chain);
    expect(stored[0]?.eventId).toBe(placedId);
    const times = stored.map((e) => e.occurredAt.getTime());
    expect([...times].sort((a, b) => a - b)).toEqual(times);

    // Publish every record a second time (as a Connect crash would): the store keeps one of each.
    const producer = kafkaClient().producer();
    await producer.connect();
    // Every domain event type is named like its topic, so the type is the canonical topic.
    for (const type of new Set(chain))
      await replayToTopic(consumer.store, producer, { orderId, eventTypes: [type] }, scope.writer.destination(type));
    await producer.disconnect();
    await consumeUntil(
      scope.writer.destination(TOPICS.orderPlaced),
      (m) => m.filter((x) => x.headers?.[OUTBOX_HEADERS.eventId]?.toString() === placedId).length >= 2,
    );
    const again = await consumer.store.history(orderId);
    expect(again.map((e) => e.eventId)).toEqual(stored.map((e) => e.eventId));

    // Three instants, taken from the events' own times: paid, unwinding, and the end.
    const when = (type: string) => again.find((e) => e.eventType === type)!.occurredAt;
    const paid = rebuildOrderState(orderId, again, when('payments.payment-captured'));
    expect(paid).toMatchObject({
      status: 'PLACED',
      stock: 'RESERVED',
      payment: 'CAPTURED',
      paidMinor: total,
      notificationsSent: ['ORDER_RECEIVED'],
      eventCount: 4,
    });
    const unwinding = rebuildOrderState(orderId, again, when('payments.payment-refunded'));
    expect(unwinding).toMatchObject({
      status: 'PLACED',
      stock: 'RESERVED',
      payment: 'REFUNDED',
      paidMinor: 0,
      eventCount: 5,
    });
    const final = rebuildOrderState(orderId, again, new Date());
    expect(final).toMatchObject({
      status: 'FAILED',
      stock: 'RELEASED',
      payment: 'REFUNDED',
      paidMinor: 0,
      failure: { type: FailureType.OrderNotPending },
      notificationsSent: ['ORDER_RECEIVED', 'ORDER_FAILED'],
      eventCount: chain.length,
    });
    expect(final.failure?.reason).toContain('the order was changed meanwhile');
  });

  it('replays a type and time range to a new topic for a new consumer', async () => {
    const orderId = uniqueName('ord');
    const t0 = Date.now() - 30_000;
    for (const s of compensatedOrder(orderId, t0)) {
      const db = await scope.admin.connect();
      await db.query('BEGIN');
      await scope.writer.append(db, s.service, { topic: s.topic, aggregateType: 'order', event: s.event });
      await db.query('COMMIT');
      db.release();
    }
    await waitUntil(
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
