import { EventCodec } from '../../src/events/codec';
import type { DomainEvent, EventMessage } from '../../src/events/event-factory';
import { InvalidEventError } from '../../src/events/event-factory';
import type { OrderConfirmedV2 } from '../../src/events/generated/event-schemas';
import { EVENT_CATALOG } from '../../src/events/generated/event-schemas';
import { TOPICS } from '../../src/events/topics';
import type { RegistryClient } from '../../src/kafka/registry-client';
import { outboxEventId } from '../../src/outbox/event-id';
import type { Queryable } from '../../src/outbox/outbox-writer';
import { OutboxWriter } from '../../src/outbox/outbox-writer';
import * as inventoryEvents from '../../src/services/inventory/inventory-events';
import { stockReleased, stockReserved } from '../../src/services/inventory/inventory-events';
import * as loyaltyEvents from '../../src/services/loyalty/loyalty-events';
import { pointsAwarded, pointsRevoked } from '../../src/services/loyalty/loyalty-events';
import * as notificationsEvents from '../../src/services/notifications/notifications-events';
import { notificationSent } from '../../src/services/notifications/notifications-events';
import * as ordersEvents from '../../src/services/orders/orders-events';
import {
  orderCancelled,
  orderConfirmed,
  orderConfirmedV1,
  orderFailed,
  orderParkedDecision,
  orderPlaced,
  orderPlacedV1,
} from '../../src/services/orders/orders-events';
import * as paymentsEvents from '../../src/services/payments/payments-events';
import { paymentCaptured, paymentRefunded } from '../../src/services/payments/payments-events';
import { DOMAIN_SERVICES } from '../../src/services/registry';

/** An in-memory registry: every schema counts as provisioned, ids 1.. in first-lookup order. */
function fakeRegistry(): RegistryClient {
  const schemas: string[] = [];
  const idOf = (schema: object | string) => {
    const text = typeof schema === 'string' ? schema : JSON.stringify(schema);
    if (!schemas.includes(text)) schemas.push(text);
    return schemas.indexOf(text) + 1;
  };
  return {
    lookup: (_subject: string, schema: object | string) => Promise.resolve({ id: idOf(schema), version: 1 }),
    schemaById: (id: number) => Promise.resolve(schemas[id - 1]!),
  } as unknown as RegistryClient;
}

/** A transaction stand-in that records the statements the writer sends. */
function recordingTx() {
  const calls: { sql: string; params: unknown[] }[] = [];
  const tx: Queryable = {
    // Takes both shapes pg does: (text, values) and a query config (the writer's prepared statement).
    query: ((sql: string | { text: string; values: unknown[] }, params: unknown[]) => {
      calls.push(typeof sql === 'string' ? { sql, params } : { sql: sql.text, params: sql.values });
      return Promise.resolve({ rows: [], rowCount: 1 });
    }) as unknown as Queryable['query'],
    escapeIdentifier: (s: string) => `"${s}"`,
  };
  return { tx, calls };
}

const KEY = 'order-ord-1/step';

/** One message of every factory, each from facts its schema accepts. */
const samples: [string, EventMessage][] = [
  [
    'orderPlaced',
    orderPlaced({
      orderId: 'ord-1',
      userId: 'user-1',
      items: [{ sku: 'SKU-1', quantity: 2, unitPriceMinor: 150 }],
      totalMinor: 300,
      currency: 'EUR',
      paymentToken: 'tok_visa_4242',
      isLoyaltyMember: true,
    }),
  ],
  [
    'orderPlacedV1',
    orderPlacedV1({
      orderId: 'ord-1',
      userId: 'user-1',
      items: [{ sku: 'SKU-1', quantity: 1, unitPriceMinor: 100 }],
      totalMinor: 100,
      currency: 'EUR',
      paymentToken: 'tok_visa_4242',
    }),
  ],
  ['orderCancelled', orderCancelled({ orderId: 'ord-1', userId: 'user-1', reason: 'changed my mind' })],
  [
    'orderConfirmed',
    orderConfirmed({
      idempotencyKey: KEY,
      orderId: 'ord-1',
      customerId: 'c-1',
      totalMinor: 300,
      currency: 'EUR',
      isLoyaltyMember: true,
    }),
  ],
  [
    'orderConfirmedV1',
    orderConfirmedV1({ idempotencyKey: KEY, orderId: 'ord-1', customerId: 'c-1', totalMinor: 300, currency: 'EUR' }),
  ],
  [
    'pointsAwarded',
    pointsAwarded({
      idempotencyKey: KEY,
      orderId: 'ord-1',
      customerId: 'c-1',
      points: 3,
      totalMinor: 300,
      currency: 'EUR',
      sourceEventId: '6b0babf9-1389-5f29-bb7c-56aa1947c430',
    }),
  ],
  [
    'pointsRevoked',
    pointsRevoked({
      idempotencyKey: KEY,
      orderId: 'ord-1',
      customerId: 'c-1',
      points: 3,
      reason: 'payments.payment-refunded',
      sourceEventId: '6b0babf9-1389-5f29-bb7c-56aa1947c430',
    }),
  ],
  [
    'orderFailed',
    orderFailed({
      idempotencyKey: KEY,
      orderId: 'ord-1',
      customerId: 'c-1',
      failureType: 'OutOfStock',
      reason: 'OutOfStock: none left',
    }),
  ],
  [
    'orderParkedDecision',
    orderParkedDecision({
      idempotencyKey: KEY,
      occurredAt: 1_700_000_000_000,
      orderId: 'ord-1',
      decision: 'RESOLVE_MANUALLY',
      operator: 'ops@example.com',
      reason: null,
      failedSteps: ['refundPayment'],
      round: 2,
    }),
  ],
  ['stockReserved', stockReserved({ idempotencyKey: KEY, orderId: 'ord-1', lines: [{ sku: 'SKU-1', quantity: 2 }] })],
  ['stockReleased', stockReleased({ idempotencyKey: KEY, orderId: 'ord-1', lines: [{ sku: 'SKU-1', quantity: 2 }] })],
  [
    'paymentCaptured',
    paymentCaptured({ idempotencyKey: KEY, orderId: 'ord-1', chargeId: 'ch_1', amountMinor: 300, currency: 'EUR' }),
  ],
  [
    'paymentRefunded',
    paymentRefunded({
      idempotencyKey: KEY,
      orderId: 'ord-1',
      chargeId: 'ch_1',
      refundId: 're_1',
      amountMinor: 300,
      currency: 'EUR',
    }),
  ],
  [
    'notificationSent',
    notificationSent({
      idempotencyKey: KEY,
      orderId: 'ord-1',
      customerId: 'c-1',
      kind: 'ORDER_CONFIRMED',
      channel: 'log',
    }),
  ],
];

describe('event factories', () => {
  // Every exported factory (the loyalty module also exports its names and award rule: not factories).
  const factories = Object.entries({
    ...ordersEvents,
    ...inventoryEvents,
    ...paymentsEvents,
    ...notificationsEvents,
    ...loyaltyEvents,
  }).filter(
    (entry): entry is [string, typeof orderConfirmed] => typeof entry[1] === 'function' && 'eventType' in entry[1],
  );

  it('exist once for every event type and version of the catalog', () => {
    const built = factories.map(([, f]) => `${f.eventType} v${f.eventVersion}`).sort();
    expect(built).toEqual(EVENT_CATALOG.map((e) => `${e.eventType} v${e.version}`).sort());
    expect(samples.map(([name]) => name).sort()).toEqual(factories.map(([name]) => name).sort());
  });

  it("of saga steps cover exactly the topics the service registry says each service's activities emit", () => {
    // A topic may have a factory per version (order.confirmed v1 and v2): one route each.
    const steps = [...new Set(factories.filter(([, f]) => f.ids === 'step').map(([, f]) => `${f.service} ${f.topic}`))];
    const registered = DOMAIN_SERVICES.flatMap((s) => s.topics.map((t) => `${s.name} ${t}`));
    expect(steps.sort()).toEqual(registered.sort());
    // The rest start or stop a saga: written by the HTTP API into the orders outbox, or sent by producers.
    expect(factories.filter(([, f]) => f.ids === 'fresh').map(([name]) => name)).toEqual([
      'orderPlaced',
      'orderPlacedV1',
      'orderCancelled',
    ]);
  });

  it.each([
    ['orderPlaced', 'orders', TOPICS.orderPlaced, 'order.placed', 2, orderPlaced],
    ['orderPlacedV1', 'orders', TOPICS.orderPlaced, 'order.placed', 1, orderPlacedV1],
    ['orderCancelled', 'orders', TOPICS.orderCancelled, 'order.cancelled', 1, orderCancelled],
    ['orderConfirmed', 'orders', TOPICS.orderConfirmed, 'order.confirmed', 2, orderConfirmed],
    ['orderConfirmedV1', 'orders', TOPICS.orderConfirmed, 'order.confirmed', 1, orderConfirmedV1],
    ['orderFailed', 'orders', TOPICS.orderFailed, 'order.failed', 1, orderFailed],
    ['orderParkedDecision', 'orders', TOPICS.orderParkedDecision, 'order.parked-decision', 1, orderParkedDecision],
    ['stockReserved', 'inventory', TOPICS.stockReserved, 'inventory.stock-reserved', 1, stockReserved],
    ['stockReleased', 'inventory', TOPICS.stockReleased, 'inventory.stock-released', 1, stockReleased],
    ['paymentCaptured', 'payments', TOPICS.paymentCaptured, 'payments.payment-captured', 1, paymentCaptured],
    ['paymentRefunded', 'payments', TOPICS.paymentRefunded, 'payments.payment-refunded', 1, paymentRefunded],
    [
      'notificationSent',
      'notifications',
      TOPICS.notificationSent,
      'notifications.notification-sent',
      1,
      notificationSent,
    ],
    ['pointsAwarded', 'loyalty', TOPICS.loyaltyPointsAwarded, 'loyalty.points-awarded', 1, pointsAwarded],
    ['pointsRevoked', 'loyalty', TOPICS.loyaltyPointsRevoked, 'loyalty.points-revoked', 1, pointsRevoked],
  ] as const)('%s goes to the %s outbox, topic %s, as %s v%d', (_name, service, topic, eventType, version, factory) => {
    expect([factory.service, factory.topic, factory.eventType, factory.eventVersion]).toEqual([
      service,
      topic,
      eventType,
      version,
    ]);
    const [, message] = samples.find(([, m]) => m.event.eventType === eventType && m.event.eventVersion === version)!;
    expect(message).toMatchObject({ service, topic, aggregateType: 'order', aggregateId: 'ord-1' });
    expect(message.event).toMatchObject({ eventType, eventVersion: version, orderId: 'ord-1' });
  });

  it('fill the whole envelope from the facts alone', () => {
    const before = Date.now();
    const { event } = stockReserved({ idempotencyKey: KEY, orderId: 'ord-7', lines: [{ sku: 'A', quantity: 1 }] });
    expect(event).toEqual({
      eventId: outboxEventId(KEY, 'inventory.stock-reserved'),
      eventType: 'inventory.stock-reserved',
      eventVersion: 1,
      occurredAt: expect.any(Number) as number,
      orderId: 'ord-7',
      lines: [{ sku: 'A', quantity: 1 }],
    });
    expect(event.occurredAt).toBeGreaterThanOrEqual(before);
    expect(event.occurredAt).toBeLessThanOrEqual(Date.now());
    // The step key names the event; it is not part of it.
    expect(event).not.toHaveProperty('idempotencyKey');
  });

  it('derive a step event id from the step key and topic, exactly as before (retries dedupe)', () => {
    // Pinned values: a change here would give every retried step of a running saga a second event.
    expect(
      stockReserved({ idempotencyKey: 'order-ord-1/reserveStock', orderId: 'ord-1', lines: [] }).event.eventId,
    ).toBe('2c1f7bf7-0f76-5efd-b3e0-67f04e446158');
    const confirmed = (idempotencyKey: string) =>
      orderConfirmed({
        idempotencyKey,
        orderId: 'ord-1',
        customerId: 'c',
        totalMinor: 1,
        currency: 'EUR',
        isLoyaltyMember: false,
      }).event;
    expect(confirmed('order-ord-1/confirmOrder').eventId).toBe('6b0babf9-1389-5f29-bb7c-56aa1947c430');
    expect(confirmed('order-ord-1/confirmOrder').eventId).toBe(confirmed('order-ord-1/confirmOrder').eventId);
    expect(confirmed('order-ord-2/confirmOrder').eventId).not.toBe(confirmed('order-ord-1/confirmOrder').eventId);
    for (const [name, { event, topic }] of samples) {
      if (factories.find(([n]) => n === name)![1].ids === 'fresh') continue;
      expect(event.eventId).toBe(outboxEventId(KEY, topic));
    }
  });

  it('give events that start something a fresh id, or the one the producer repeats', () => {
    const facts = { orderId: 'ord-1', userId: 'u', reason: 'r' };
    const a = orderCancelled(facts).event.eventId;
    const b = orderCancelled(facts).event.eventId;
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(b).not.toBe(a);
    expect(orderCancelled({ ...facts, eventId: a }).event.eventId).toBe(a);
  });

  it('keep a given occurredAt (a decision at workflow time)', () => {
    const [, decision] = samples.find(([name]) => name === 'orderParkedDecision')!;
    expect(decision.event.occurredAt).toBe(1_700_000_000_000);
  });

  it('refuse facts their schema does not accept, naming the field', () => {
    const badLines = [{ sku: 'A', quantity: 1.5 }];
    expect(() => stockReserved({ idempotencyKey: KEY, orderId: 'ord-1', lines: badLines })).toThrow(InvalidEventError);
    let caught: unknown;
    try {
      // @ts-expect-error -- customerId is missing: a compile error, and refused at run time too.
      orderConfirmed({
        idempotencyKey: KEY,
        orderId: 'ord-1',
        totalMinor: 300,
        currency: 'EUR',
        isLoyaltyMember: false,
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidEventError);
    expect((caught as InvalidEventError).type).toBe('InvalidEvent');
    expect((caught as Error).message).toMatch(/^order\.confirmed v2: customerId: /);
    expect(() =>
      // @ts-expect-error -- amountMinor is a number of minor units, never a string.
      paymentCaptured({ idempotencyKey: KEY, orderId: 'o', chargeId: 'c', amountMinor: '3.00', currency: 'EUR' }),
    ).toThrow(/amountMinor/);
    expect(() =>
      // @ts-expect-error -- the channel is its name.
      notificationSent({ idempotencyKey: KEY, orderId: 'o', customerId: 'c', kind: 'ORDER_CONFIRMED', channel: 7 }),
    ).toThrow(/channel/);
  });

  it('do not let facts override the envelope', () => {
    // @ts-expect-error -- the envelope is the factory's business.
    const { event } = stockReleased({ idempotencyKey: KEY, orderId: 'ord-1', lines: [], eventType: 'x', eventId: 'y' });
    expect(event).toMatchObject({
      eventType: 'inventory.stock-released',
      eventVersion: 1,
      eventId: outboxEventId(KEY, TOPICS.stockReleased),
    });
  });

  it.each(samples)('%s survives the Avro codec unchanged', async (_name, message) => {
    const codec = new EventCodec(fakeRegistry());
    const decoded = await codec.decodeEvent(await codec.encode(message.topic, message.event));
    expect(decoded).toMatchObject({
      ok: true,
      eventType: message.event.eventType,
      eventVersion: message.event.eventVersion,
    });
    expect(decoded.ok && decoded.event).toEqual(message.event);
  });
});

describe('OutboxWriter.emit', () => {
  it('writes the row append wrote for the same hand-built event: same columns, same bytes', async () => {
    const codec = new EventCodec(fakeRegistry());
    const writer = new OutboxWriter({ codec, topicPrefix: 'scope-1' });
    const message = orderConfirmed({
      idempotencyKey: 'order-ord-9/confirmOrder',
      orderId: 'ord-9',
      customerId: 'c-9',
      totalMinor: 4200,
      currency: 'EUR',
      isLoyaltyMember: true,
    });
    const trace = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
    const emitted = recordingTx();
    expect(await writer.emit(emitted.tx, message, trace)).toBe('scope-1.order.confirmed');

    const byHand: OrderConfirmedV2 = {
      eventId: outboxEventId('order-ord-9/confirmOrder', TOPICS.orderConfirmed),
      eventType: 'order.confirmed',
      eventVersion: 2,
      occurredAt: message.event.occurredAt,
      orderId: 'ord-9',
      customerId: 'c-9',
      totalMinor: 4200,
      currency: 'EUR',
      isLoyaltyMember: true,
    };
    const appended = recordingTx();
    await writer.append(appended.tx, 'orders', {
      topic: TOPICS.orderConfirmed,
      aggregateType: 'order',
      event: byHand,
      trace,
    });

    expect(emitted.calls).toHaveLength(1);
    expect(emitted.calls[0]!.sql).toContain('INSERT INTO "orders".outbox');
    expect(emitted.calls).toEqual(appended.calls);
    const [id, aggregateType, aggregateId, type, topic, payload, traceparent] = emitted.calls[0]!.params;
    expect([id, aggregateType, aggregateId, type, topic, traceparent]).toEqual([
      byHand.eventId,
      'order',
      'ord-9',
      'order.confirmed',
      'scope-1.order.confirmed',
      trace.traceparent,
    ]);
    expect(payload).toEqual(await codec.encode(TOPICS.orderConfirmed, byHand));
  });

  it('writes to the outbox of the service the event belongs to', async () => {
    const writer = new OutboxWriter({ codec: new EventCodec(fakeRegistry()) });
    const { tx, calls } = recordingTx();
    const message: EventMessage<DomainEvent> = stockReserved({ idempotencyKey: KEY, orderId: 'ord-1', lines: [] });
    expect(await writer.emit(tx, message)).toBe('inventory.stock-reserved');
    expect(calls[0]!.sql).toContain('INSERT INTO "inventory".outbox');
  });
});
