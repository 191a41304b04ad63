import { outboxEventId } from '../../src/outbox/event-id';
import { createOrdersActivities, failureTypeOf } from '../../src/services/orders/orders-activities';
import type { OrderDetails } from '../../src/shared/saga-contract';
import { FailureType } from '../../src/shared/saga-contract';
import type { DbHarness } from '../support/db-harness';
import { failureOf, openDb, outboxEvents, runActivity } from '../support/db-harness';
import { uniqueName } from '../support/stack';

describe('orders activities', () => {
  let db: DbHarness;
  let acts: ReturnType<typeof createOrdersActivities>;
  beforeAll(async () => {
    db = await openDb();
    acts = createOrdersActivities({ db: db.pools.orders, outbox: db.outbox });
  });
  afterAll(() => db.close());

  const newOrder = (): OrderDetails => ({
    orderId: uniqueName('ord'),
    customerId: 'cust-1',
    currency: 'EUR',
    paymentToken: 'tok_visa',
    items: [
      { sku: 'sku-a', quantity: 2, unitPriceMinor: 1_999 },
      { sku: 'sku-b', quantity: 1, unitPriceMinor: 500 },
    ],
  });
  const orderRow = async (orderId: string) =>
    (
      await db.admin.query<{ status: string; total_minor: string; failure_reason: string | null }>(
        'SELECT status, total_minor, failure_reason FROM orders.orders WHERE order_id = $1',
        [orderId],
      )
    ).rows;
  const lineCount = async (orderId: string) => {
    const { rows } = await db.admin.query<{ n: string }>(
      'SELECT count(*) AS n FROM orders.order_lines WHERE order_id = $1',
      [orderId],
    );
    return Number(rows[0]?.n);
  };

  it('createOrder records a PENDING order with exact totals, and a second run changes nothing', async () => {
    const order = newOrder();
    const key = `order-${order.orderId}/createOrder`;
    const first = await runActivity(acts.createOrder, { idempotencyKey: key, order });
    const second = await runActivity(acts.createOrder, { idempotencyKey: key, order });
    expect(first).toEqual({ orderId: order.orderId, totalMinor: 4_498, currency: 'EUR' });
    expect(second).toEqual(first);
    expect(await orderRow(order.orderId)).toEqual([{ status: 'PENDING', total_minor: '4498', failure_reason: null }]);
    expect(await lineCount(order.orderId)).toBe(2);
    // The order's creation is announced by the order.placed event that started the saga, not here.
    expect(await outboxEvents(db, 'orders', order.orderId)).toEqual([]);
  });

  it('createOrder accepts an order already written with the same content, refuses other content', async () => {
    const order = newOrder();
    await runActivity(acts.createOrder, { idempotencyKey: uniqueName('k'), order });
    await expect(runActivity(acts.createOrder, { idempotencyKey: uniqueName('k'), order })).resolves.toMatchObject({
      totalMinor: 4_498,
    });
    const changed = { ...order, customerId: 'someone-else' };
    const failure = await failureOf(runActivity(acts.createOrder, { idempotencyKey: uniqueName('k'), order: changed }));
    expect(failure).toMatchObject({ type: FailureType.InvalidOrder, nonRetryable: true });
    expect(await lineCount(order.orderId)).toBe(2);
  });

  it('createOrder rejects an invalid order as non-retryable InvalidOrder, the same way twice, writing nothing', async () => {
    const order = { ...newOrder(), items: [{ sku: 'sku-a', quantity: 0, unitPriceMinor: 100 }] };
    const key = uniqueName('k');
    const first = await failureOf(runActivity(acts.createOrder, { idempotencyKey: key, order }));
    const second = await failureOf(runActivity(acts.createOrder, { idempotencyKey: key, order }));
    expect(first).toMatchObject({ type: FailureType.InvalidOrder, nonRetryable: true });
    expect(second).toEqual(first);
    expect(await orderRow(order.orderId)).toEqual([]);
  });

  it('confirmOrder moves PENDING to CONFIRMED once; a second run changes nothing', async () => {
    const order = newOrder();
    await runActivity(acts.createOrder, { idempotencyKey: uniqueName('k'), order });
    const key = uniqueName('k');
    const first = await runActivity(acts.confirmOrder, { idempotencyKey: key, orderId: order.orderId });
    const before = await db.admin.query('SELECT updated_at FROM orders.orders WHERE order_id = $1', [order.orderId]);
    const second = await runActivity(acts.confirmOrder, { idempotencyKey: key, orderId: order.orderId });
    const after = await db.admin.query('SELECT updated_at FROM orders.orders WHERE order_id = $1', [order.orderId]);
    expect(first).toEqual({ orderId: order.orderId, status: 'CONFIRMED', changed: true });
    expect(second).toEqual(first);
    expect(after.rows).toEqual(before.rows);
    expect((await orderRow(order.orderId))[0]?.status).toBe('CONFIRMED');
    // Exactly one order.confirmed, self-contained, with an id the step's key decides.
    const events = await outboxEvents(db, 'orders', order.orderId);
    expect(events).toEqual([
      {
        topic: `${db.outbox.topicPrefix}.order.confirmed`,
        aggregateType: 'order',
        aggregateId: order.orderId,
        type: 'order.confirmed',
        event: {
          eventId: outboxEventId(key, 'order.confirmed'),
          eventType: 'order.confirmed',
          eventVersion: 2,
          occurredAt: expect.any(Number) as number,
          orderId: order.orderId,
          customerId: 'cust-1',
          totalMinor: 4_498,
          currency: 'EUR',
          isLoyaltyMember: false,
        },
      },
    ]);
    // Confirming an already confirmed order under another key changes nothing and announces nothing.
    const again = await runActivity(acts.confirmOrder, { idempotencyKey: uniqueName('k'), orderId: order.orderId });
    expect(again).toEqual({ orderId: order.orderId, status: 'CONFIRMED', changed: false });
    expect(await outboxEvents(db, 'orders', order.orderId)).toHaveLength(1);
  });

  it("confirmOrder's order.confirmed v2 carries the member flag the order was created with", async () => {
    const order = { ...newOrder(), isLoyaltyMember: true };
    await runActivity(acts.createOrder, { idempotencyKey: uniqueName('k'), order });
    await runActivity(acts.confirmOrder, { idempotencyKey: uniqueName('k'), orderId: order.orderId });
    const events = await outboxEvents(db, 'orders', order.orderId);
    expect(events.map((e) => e.event)).toEqual([
      expect.objectContaining({ eventType: 'order.confirmed', eventVersion: 2, isLoyaltyMember: true }),
    ]);
  });

  it('failOrder records FAILED with its reason once; confirming it afterwards is OrderNotPending', async () => {
    const order = newOrder();
    await runActivity(acts.createOrder, { idempotencyKey: uniqueName('k'), order });
    const key = uniqueName('k');
    const input = { idempotencyKey: key, orderId: order.orderId, reason: 'PaymentDeclined: card declined' };
    const first = await runActivity(acts.failOrder, input);
    const second = await runActivity(acts.failOrder, { ...input, reason: 'a different reason' });
    expect(first).toEqual({ orderId: order.orderId, status: 'FAILED', changed: true });
    expect(second).toEqual(first);
    expect(await orderRow(order.orderId)).toEqual([
      { status: 'FAILED', total_minor: '4498', failure_reason: 'PaymentDeclined: card declined' },
    ]);
    const failure = await failureOf(
      runActivity(acts.confirmOrder, { idempotencyKey: uniqueName('k'), orderId: order.orderId }),
    );
    expect(failure).toMatchObject({ type: FailureType.OrderNotPending, nonRetryable: true });
    // One order.failed (the repeat and the refused confirmation wrote nothing).
    const events = await outboxEvents(db, 'orders', order.orderId);
    expect(events.map((e) => e.event)).toEqual([
      {
        eventId: outboxEventId(key, 'order.failed'),
        eventType: 'order.failed',
        eventVersion: 1,
        occurredAt: expect.any(Number) as number,
        orderId: order.orderId,
        customerId: 'cust-1',
        failureType: 'PaymentDeclined',
        reason: 'PaymentDeclined: card declined',
      },
    ]);
    expect(events[0]?.topic).toBe(`${db.outbox.topicPrefix}.order.failed`);
  });

  it('failureTypeOf reads the saga reason prefix, and says Unknown for anything else', () => {
    expect(failureTypeOf('OutOfStock: out of stock: sku-a')).toBe('OutOfStock');
    expect(failureTypeOf('cancelled by the customer')).toBe('Unknown');
    expect(failureTypeOf('')).toBe('Unknown');
  });

  it('failOrder of an order that was never created is a recorded no-op', async () => {
    const orderId = uniqueName('ord');
    const result = await runActivity(acts.failOrder, { idempotencyKey: uniqueName('k'), orderId, reason: 'x' });
    expect(result).toEqual({ orderId, status: 'MISSING', changed: false });
    expect(await orderRow(orderId)).toEqual([]);
    expect(await outboxEvents(db, 'orders', orderId)).toEqual([]);
  });

  it('refuses an idempotency key reused for another operation', async () => {
    const order = newOrder();
    const key = uniqueName('k');
    await runActivity(acts.createOrder, { idempotencyKey: key, order });
    const failure = await failureOf(runActivity(acts.confirmOrder, { idempotencyKey: key, orderId: order.orderId }));
    expect(failure).toMatchObject({ type: FailureType.IdempotencyKeyReused, nonRetryable: true });
    expect((await orderRow(order.orderId))[0]?.status).toBe('PENDING');
  });
});

describe('orders activities on one connection', () => {
  let db: DbHarness;
  beforeAll(async () => {
    db = await openDb(1);
  });
  afterAll(() => db.close());

  it('prepare each statement of a step once (idempotency record, effect, outbox row) and reuse it', async () => {
    const acts = createOrdersActivities({ db: db.pools.orders, outbox: db.outbox });
    for (let i = 0; i < 2; i++) {
      const order = { orderId: uniqueName('ord'), customerId: 'cust-1', currency: 'EUR', paymentToken: 'tok_visa' };
      const items = [{ sku: 'sku-a', quantity: 1, unitPriceMinor: 100 }];
      await runActivity(acts.createOrder, { idempotencyKey: uniqueName('k'), order: { ...order, items } });
      await runActivity(acts.confirmOrder, { idempotencyKey: uniqueName('k'), orderId: order.orderId });
    }
    const { rows } = await db.pools.orders.query<{ statement: string; runs: number }>(
      `SELECT statement, (generic_plans + custom_plans)::int AS runs FROM pg_prepared_statements
       WHERE name LIKE 'kts\\_%'`,
    );
    const runsOf = (fragment: string) => rows.filter((r) => r.statement.includes(fragment)).map((r) => r.runs);
    expect(runsOf('idempotency_keys (key, operation) VALUES')).toEqual([4]);
    expect(runsOf('SET outcome = $2')).toEqual([4]);
    expect(runsOf('INSERT INTO orders.orders')).toEqual([2]);
    expect(runsOf("UPDATE orders.orders SET status = 'CONFIRMED'")).toEqual([2]);
    expect(runsOf('"orders".outbox')).toEqual([2]);
  });
});
