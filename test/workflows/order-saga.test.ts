import path from 'node:path';

import { ApplicationFailure } from '@temporalio/common';

import type { SagaStatus } from '../../src/shared/saga-contract';
import { cancelOrderSignal, FailureType, idempotencyKey, sagaStatusQuery } from '../../src/shared/saga-contract';
import { stockOf } from '../support/db-harness';
import type { SagaHarness } from '../support/saga-harness';
import {
  CALM_GATEWAY,
  latch,
  maybeRecordHistory,
  newOrder,
  openSagaHarness,
  stockedSku,
  withSagaWorkers,
  workflowFailure,
} from '../support/saga-harness';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(120_000);

describe('orderSaga on the real Temporal server', () => {
  let h: SagaHarness;
  beforeAll(async () => {
    h = await openSagaHarness();
  });
  afterAll(() => h.close());

  const orderRow = async (orderId: string) =>
    (
      await h.db.admin.query<{ status: string; failure_reason: string | null }>(
        'SELECT status, failure_reason FROM orders.orders WHERE order_id = $1',
        [orderId],
      )
    ).rows[0];
  const gatewayCharges = async (orderId: string) =>
    (
      await h.db.admin.query<{ outcome: string; amount_minor: string; refunded_minor: string }>(
        'SELECT outcome, amount_minor, refunded_minor FROM card_gateway.charges WHERE idempotency_key = $1',
        [idempotencyKey(`order-${orderId}`, 'chargePayment')],
      )
    ).rows;
  const notices = async (orderId: string) =>
    (
      await h.db.admin.query<{ kind: string }>(
        'SELECT kind FROM notifications.notifications WHERE order_id = $1 ORDER BY created_at',
        [orderId],
      )
    ).rows.map((r) => r.kind);

  it('happy path: order confirmed, stock taken, charged once, customer told', async () => {
    const sku = await stockedSku(h, 10);
    const order = newOrder(sku, 3);
    await withSagaWorkers(h, {}, async ({ start }) => {
      const handle = await start(order);
      const result = await handle.result();
      expect(result.outcome).toBe('CONFIRMED');
      const status = await handle.query(sagaStatusQuery);
      expect(status).toMatchObject<Partial<SagaStatus>>({
        state: 'CONFIRMED',
        currentStep: null,
        completedSteps: ['createOrder', 'reserveStock', 'chargePayment', 'confirmOrder', 'notifyCustomer'],
        compensationsRun: [],
        failure: null,
      });
      await maybeRecordHistory(handle, 'happy-path');
    });
    expect(await orderRow(order.orderId)).toEqual({ status: 'CONFIRMED', failure_reason: null });
    expect(await stockOf(h.db, sku)).toBe(7);
    expect(await gatewayCharges(order.orderId)).toEqual([
      { outcome: 'captured', amount_minor: '7500', refunded_minor: '0' },
    ]);
    expect(await notices(order.orderId)).toEqual(['ORDER_RECEIVED', 'ORDER_CONFIRMED']);
  });

  it('declined payment: stock released, order FAILED, customer told, nothing refunded', async () => {
    const sku = await stockedSku(h, 5);
    const order = newOrder(sku, 2);
    await withSagaWorkers(h, { gateway: { ...CALM_GATEWAY, declineRate: 1 } }, async ({ start }) => {
      const handle = await start(order);
      const result = await handle.result();
      expect(result.outcome).toBe('FAILED');
      expect(result.status.failure).toMatchObject({ type: FailureType.PaymentDeclined, step: 'chargePayment' });
      expect(result.status.completedSteps).toEqual(['createOrder', 'reserveStock']);
      expect(result.status.compensationsRun).toEqual(['releaseStock', 'failOrder', 'notifyCustomer']);
      await maybeRecordHistory(handle, 'declined-payment');
    });
    expect(await stockOf(h.db, sku)).toBe(5);
    expect(await orderRow(order.orderId)).toEqual({
      status: 'FAILED',
      failure_reason: expect.stringContaining(FailureType.PaymentDeclined) as string,
    });
    expect(await gatewayCharges(order.orderId)).toEqual([
      { outcome: 'declined', amount_minor: '5000', refunded_minor: '0' },
    ]);
    expect(await notices(order.orderId)).toEqual(['ORDER_RECEIVED', 'ORDER_FAILED']);
  });

  it('out of stock: nothing charged, order FAILED, customer told', async () => {
    const sku = await stockedSku(h, 1);
    const order = newOrder(sku, 2);
    await withSagaWorkers(h, {}, async ({ start }) => {
      const handle = await start(order);
      const result = await handle.result();
      expect(result.outcome).toBe('FAILED');
      expect(result.status.failure).toMatchObject({ type: FailureType.OutOfStock, step: 'reserveStock' });
      expect(result.status.compensationsRun).toEqual(['failOrder', 'notifyCustomer']);
      await maybeRecordHistory(handle, 'out-of-stock');
    });
    expect(await stockOf(h.db, sku)).toBe(1);
    expect(await gatewayCharges(order.orderId)).toEqual([]);
    expect((await orderRow(order.orderId))?.status).toBe('FAILED');
    expect(await notices(order.orderId)).toEqual(['ORDER_RECEIVED', 'ORDER_FAILED']);
  });

  it('an invalid order fails at once, non-retryable, with nothing to undo', async () => {
    const order = { ...newOrder('any-sku', 1), items: [] };
    await withSagaWorkers(h, {}, async ({ start }) => {
      const result = await (await start(order)).result();
      expect(result.outcome).toBe('FAILED');
      expect(result.status.failure).toMatchObject({ type: FailureType.InvalidOrder, step: 'createOrder' });
      expect(result.status.compensationsRun).toEqual(['notifyCustomer']);
    });
    expect(await orderRow(order.orderId)).toBeUndefined();
    expect(await notices(order.orderId)).toEqual(['ORDER_FAILED']);
  });

  it('cancel signal while stock is being reserved: stock released, never charged, order FAILED', async () => {
    const sku = await stockedSku(h, 4);
    const order = newOrder(sku, 2);
    const gate = latch();
    await withSagaWorkers(
      h,
      {
        override: (real) => ({
          inventory: {
            reserveStock: async (input) => {
              await gate.wait();
              return real.inventory.reserveStock(input);
            },
          },
        }),
      },
      async ({ start }) => {
        const handle = await start(order);
        await waitUntil(
          'the saga to reach reserveStock',
          async () => (await handle.query(sagaStatusQuery)).currentStep === 'reserveStock',
        );
        await handle.signal(cancelOrderSignal, { reason: 'customer changed their mind' });
        gate.open();
        const result = await handle.result();
        expect(result.outcome).toBe('FAILED');
        expect(result.status).toMatchObject<Partial<SagaStatus>>({
          cancelRequested: true,
          failure: expect.objectContaining({ type: FailureType.Cancelled }) as SagaStatus['failure'],
          compensationsRun: ['releaseStock', 'failOrder', 'notifyCustomer'],
        });
        await maybeRecordHistory(handle, 'cancelled');
      },
    );
    expect(await stockOf(h.db, sku)).toBe(4);
    expect(await gatewayCharges(order.orderId)).toEqual([]);
    expect(await orderRow(order.orderId)).toEqual({
      status: 'FAILED',
      failure_reason: expect.stringContaining(FailureType.Cancelled) as string,
    });
    expect(await notices(order.orderId)).toEqual(['ORDER_RECEIVED', 'ORDER_FAILED']);
  });

  it('a Temporal cancellation before payment compensates the same way', async () => {
    const sku = await stockedSku(h, 4);
    const order = newOrder(sku, 3);
    const gate = latch();
    await withSagaWorkers(
      h,
      {
        override: (real) => ({
          inventory: {
            reserveStock: async (input) => {
              await gate.wait();
              return real.inventory.reserveStock(input);
            },
          },
        }),
      },
      async ({ start }) => {
        const handle = await start(order);
        await waitUntil(
          'the saga to reach reserveStock',
          async () => (await handle.query(sagaStatusQuery)).currentStep === 'reserveStock',
        );
        await handle.cancel();
        gate.open();
        const result = await handle.result();
        expect(result.outcome).toBe('FAILED');
        expect(result.status.failure?.type).toBe(FailureType.Cancelled);
        expect(result.status.compensationsRun).toEqual(['releaseStock', 'failOrder', 'notifyCustomer']);
      },
    );
    expect(await stockOf(h.db, sku)).toBe(4);
    expect(await gatewayCharges(order.orderId)).toEqual([]);
    expect((await orderRow(order.orderId))?.status).toBe('FAILED');
  });

  it('a cancel after payment was captured is ignored and recorded: the order goes through', async () => {
    const sku = await stockedSku(h, 4);
    const order = newOrder(sku, 1);
    const gate = latch();
    await withSagaWorkers(
      h,
      {
        override: (real) => ({
          orders: {
            confirmOrder: async (input) => {
              await gate.wait();
              return real.orders.confirmOrder(input);
            },
          },
        }),
      },
      async ({ start }) => {
        const handle = await start(order);
        await waitUntil(
          'the saga to reach confirmOrder',
          async () => (await handle.query(sagaStatusQuery)).currentStep === 'confirmOrder',
        );
        await handle.signal(cancelOrderSignal, { reason: 'too late' });
        gate.open();
        const result = await handle.result();
        expect(result.outcome).toBe('CONFIRMED');
        expect(result.status.cancelRequested).toBe(false);
        expect(result.status.cancelIgnoredReason).toContain('after payment was captured');
      },
    );
    expect((await orderRow(order.orderId))?.status).toBe('CONFIRMED');
    expect(await gatewayCharges(order.orderId)).toHaveLength(1);
  });

  it('transient gateway errors are retried with backoff until the charge goes through, once', async () => {
    const sku = await stockedSku(h, 3);
    const order = newOrder(sku, 1);
    // The gateway draws the transient error first: two failing draws, then healthy answers.
    const draws = [0, 0];
    const random = () => draws.shift() ?? 0.99;
    await withSagaWorkers(h, { gateway: { ...CALM_GATEWAY, transientErrorRate: 0.5, random } }, async ({ start }) => {
      const result = await (await start(order)).result();
      expect(result.outcome).toBe('CONFIRMED');
    });
    const requests = await h.db.admin.query<{ result: string }>(
      'SELECT result FROM card_gateway.requests WHERE idempotency_key = $1 ORDER BY request_id',
      [idempotencyKey(`order-${order.orderId}`, 'chargePayment')],
    );
    expect(requests.rows.map((r) => r.result)).toEqual(['unavailable', 'unavailable', 'captured']);
    expect(await gatewayCharges(order.orderId)).toEqual([
      { outcome: 'captured', amount_minor: '2500', refunded_minor: '0' },
    ]);
  });

  it('a compensation failing transiently is retried until it succeeds', async () => {
    const sku = await stockedSku(h, 3);
    const order = newOrder(sku, 2);
    let releaseAttempts = 0;
    await withSagaWorkers(
      h,
      {
        gateway: { ...CALM_GATEWAY, declineRate: 1 },
        override: (real) => ({
          inventory: {
            releaseStock: async (input) => {
              releaseAttempts += 1;
              if (releaseAttempts <= 2) throw new Error('inventory database unreachable');
              return real.inventory.releaseStock(input);
            },
          },
        }),
      },
      async ({ start }) => {
        const handle = await start(order);
        const result = await handle.result();
        expect(result.outcome).toBe('FAILED');
        expect(result.status.compensationsRun).toEqual(['releaseStock', 'failOrder', 'notifyCustomer']);
        await maybeRecordHistory(handle, 'compensation-retry');
      },
    );
    expect(releaseAttempts).toBe(3);
    expect(await stockOf(h.db, sku)).toBe(3);
  });
});

describe('orderSaga as runs from before parking take it', () => {
  let old: SagaHarness;
  beforeAll(async () => {
    old = await openSagaHarness(5, path.join(__dirname, '..', 'support', 'workflows', 'saga-before-parking.ts'));
  });
  afterAll(() => old.close());
  const orderRow = async (orderId: string) =>
    (await old.db.admin.query<{ status: string }>('SELECT status FROM orders.orders WHERE order_id = $1', [orderId]))
      .rows[0];

  it('before parking (runs without the v3 patch): a compensation that keeps failing ends the saga in COMPENSATION_FAILED, visibly', async () => {
    const sku = await stockedSku(old, 3);
    const order = newOrder(sku, 2);
    let releaseAttempts = 0;
    await withSagaWorkers(
      old,
      {
        gateway: { ...CALM_GATEWAY, declineRate: 1 },
        override: () => ({
          inventory: {
            releaseStock: () => {
              releaseAttempts += 1;
              return Promise.reject(ApplicationFailure.retryable('inventory database unreachable', 'DatabaseDown'));
            },
          },
        }),
      },
      async ({ start }) => {
        const handle = await start(order);
        const failure = await workflowFailure(handle.result());
        expect(failure.type).toBe(FailureType.CompensationFailed);
        const finalStatus = failure.details[0] as SagaStatus;
        expect(finalStatus).toMatchObject<Partial<SagaStatus>>({
          state: 'COMPENSATION_FAILED',
          failure: expect.objectContaining({ type: FailureType.PaymentDeclined }) as SagaStatus['failure'],
          failedCompensations: [expect.objectContaining({ step: 'releaseStock', type: 'DatabaseDown' })],
          // The other compensations still ran: one stuck step must not strand the rest.
          compensationsRun: ['failOrder', 'notifyCustomer'],
        });
        expect((await handle.query(sagaStatusQuery)).state).toBe('COMPENSATION_FAILED');
        expect((await handle.describe()).status.name).toBe('FAILED');
      },
    );
    expect(releaseAttempts).toBe(4); // the test policy's maximumAttempts
    expect(await stockOf(old.db, sku)).toBe(1); // still reserved: visible, not silently fixed
    expect((await orderRow(order.orderId))?.status).toBe('FAILED');
  });
});
