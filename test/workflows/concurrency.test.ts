import type { OrderSagaResult } from '../../src/shared/saga-contract';
import { FailureType } from '../../src/shared/saga-contract';
import { stockOf } from '../support/db-harness';
import type { SagaHarness } from '../support/saga-harness';
import { CALM_GATEWAY, newOrder, openSagaHarness, stockedSku, withSagaWorkers } from '../support/saga-harness';

jest.setTimeout(600_000);

const SAGAS = 200;
const UNITS = 50;

describe('sagas racing for one SKU', () => {
  let h: SagaHarness;
  beforeAll(async () => {
    h = await openSagaHarness(10);
  });
  afterAll(() => h.close());

  it(`${SAGAS} sagas for ${UNITS} units: exactly ${UNITS} confirmed, stock 0, the rest compensated, charges == confirmed`, async () => {
    const sku = await stockedSku(h, UNITS);
    const orders = Array.from({ length: SAGAS }, () => newOrder(sku, 1));
    const orderIds = orders.map((o) => o.orderId);
    // Transient gateway errors add retries to the race without changing who wins; the policy has
    // room enough that a charge never runs out of attempts (0.2^10).
    const gateway = { ...CALM_GATEWAY, transientErrorRate: 0.2 };
    const results = await withSagaWorkers(
      h,
      { gateway, maxConcurrentActivityTaskExecutions: 20 },
      async ({ start }) => {
        const handles = await Promise.all(
          orders.map((o) =>
            start(o, {
              forwardRetry: {
                initialIntervalMs: 50,
                maximumIntervalMs: 500,
                backoffCoefficient: 2,
                maximumAttempts: 10,
              },
            }),
          ),
        );
        return Promise.all(handles.map((handle) => handle.result()));
      },
    );

    const confirmed = results.filter((r) => r.outcome === 'CONFIRMED');
    const failed = results.filter((r) => r.outcome === 'FAILED');
    expect(confirmed).toHaveLength(UNITS);
    expect(failed).toHaveLength(SAGAS - UNITS);
    for (const r of failed) {
      expect(summary(r)).toEqual({
        failure: FailureType.OutOfStock,
        completed: ['createOrder'],
        compensations: ['failOrder', 'notifyCustomer'],
      });
    }
    expect(await stockOf(h.db, sku)).toBe(0);

    const statuses = await h.db.admin.query<{ status: string; n: string }>(
      'SELECT status, count(*) AS n FROM orders.orders WHERE order_id = ANY($1) GROUP BY status ORDER BY status',
      [orderIds],
    );
    expect(statuses.rows).toEqual([
      { status: 'CONFIRMED', n: String(UNITS) },
      { status: 'FAILED', n: String(SAGAS - UNITS) },
    ]);
    // Stock held only by confirmed orders, and every unit accounted for.
    const held = await h.db.admin.query<{ order_id: string; quantity: number }>(
      `SELECT r.order_id, l.quantity FROM inventory.reservations r JOIN inventory.reservation_lines l USING (reservation_key)
       WHERE l.sku = $1 AND r.status = 'RESERVED'`,
      [sku],
    );
    const confirmedIds = new Set(confirmed.map((r) => r.orderId));
    expect(held.rows).toHaveLength(UNITS);
    expect(held.rows.every((r) => confirmedIds.has(r.order_id) && r.quantity === 1)).toBe(true);
    // Charges at the gateway: one captured, unrefunded charge per confirmed order and no other.
    const charges = await h.db.admin.query<{ key: string; outcome: string; refunded_minor: string }>(
      `SELECT idempotency_key AS key, outcome, refunded_minor FROM card_gateway.charges WHERE idempotency_key = ANY($1)`,
      [orderIds.map((id) => `order-${id}/chargePayment`)],
    );
    expect(charges.rows).toHaveLength(confirmed.length);
    expect(new Set(charges.rows.map((c) => c.key))).toEqual(
      new Set(confirmed.map((r) => `order-${r.orderId}/chargePayment`)),
    );
    expect(charges.rows.every((c) => c.outcome === 'captured' && c.refunded_minor === '0')).toBe(true);
    const notices = await h.db.admin.query<{ kind: string; n: string }>(
      'SELECT kind, count(*) AS n FROM notifications.notifications WHERE order_id = ANY($1) GROUP BY kind ORDER BY kind',
      [orderIds],
    );
    expect(notices.rows).toEqual([
      { kind: 'ORDER_CONFIRMED', n: String(UNITS) },
      { kind: 'ORDER_FAILED', n: String(SAGAS - UNITS) },
      { kind: 'ORDER_RECEIVED', n: String(SAGAS) },
    ]);
  });
});

function summary(r: OrderSagaResult) {
  return {
    failure: r.status.failure?.type,
    completed: r.status.completedSteps,
    compensations: r.status.compensationsRun,
  };
}
