import { placedEvent } from '../../src/cli/order-events';
import type { SagaStartMemo } from '../../src/ingress/saga-gateway';
import type { OrderSagaResult } from '../../src/shared/saga-contract';
import { orderWorkflowId } from '../../src/shared/saga-contract';
import { DECLINED_CARD_TOKEN } from '../../src/simulated-external/card-gateway';
import { db, ledgerOutcomes, newScope, produce } from '../support/ingress-harness';
import { startSystem } from '../support/system';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(300_000);

afterAll(async () => {
  await db.end();
});

/** The ingress and every worker, started as their processes start them. */
const ROLES = ['saga', 'orders', 'inventory', 'payments', 'notifications', 'ingress'] as const;

const N = 24;

describe('ingress → real orderSaga (all services, real PostgreSQL, real Temporal)', () => {
  it('turns N Avro events (v1 and v2, sent three times) into N sagas with the right outcomes and N charges', async () => {
    const scope = await newScope('e2e_ingress_saga', 3);
    const system = await startSystem(ROLES, { scope: scope.prefix });
    const skus = [await system.stockedSku(10_000), await system.stockedSku(10_000)];
    // Every fourth order pays with a card the gateway declines: that saga must fail, compensated.
    const events = Array.from({ length: N }, (_, i) =>
      placedEvent({
        version: i % 2 === 0 ? 1 : 2,
        isLoyaltyMember: true,
        skus,
        paymentToken: i % 4 === 3 ? DECLINED_CARD_TOKEN : 'tok_visa',
      }),
    );
    try {
      const ingress = system.running.ingress!;
      for (let round = 0; round < 3; round += 1)
        await produce(
          scope.placed,
          events.map((event) => ({ event })),
        );
      await waitUntil(
        'N sagas started',
        () => ledgerOutcomes(scope),
        (o) => o.STARTED === N,
      );
      const results = await Promise.all(
        events.map(
          (e) => system.client.workflow.getHandle(orderWorkflowId(e.orderId)).result() as Promise<OrderSagaResult>,
        ),
      );
      expect(results.map((r) => r.outcome)).toEqual(
        events.map((e) => (e.paymentToken === DECLINED_CARD_TOKEN ? 'FAILED' : 'CONFIRMED')),
      );
      expect(
        results.filter((r) => r.outcome === 'FAILED').every((r) => r.status.failure?.type === 'PaymentDeclined'),
      ).toBe(true);
      await waitUntil(
        'duplicates handled',
        () => Promise.resolve(ingress.consumer.stats.handled.DUPLICATE_EVENT),
        (n) => n === 2 * N,
      );
      const ids = events.map((e) => e.orderId);
      const orders = await db.query<{ status: string; n: string }>(
        'SELECT status, count(*) AS n FROM orders.orders WHERE order_id = ANY($1) GROUP BY status ORDER BY status',
        [ids],
      );
      expect(orders.rows.map((r) => [r.status, Number(r.n)])).toEqual([
        ['CONFIRMED', N - N / 4],
        ['FAILED', N / 4],
      ]);
      // The card gateway's own books: exactly one charge request per order, captured or declined.
      const charges = await db.query<{ outcome: string; n: string }>(
        `SELECT outcome, count(*) AS n FROM card_gateway.charges
        WHERE idempotency_key = ANY($1) GROUP BY outcome ORDER BY outcome`,
        [ids.map((id) => `${orderWorkflowId(id)}/chargePayment`)],
      );
      expect(charges.rows.map((r) => [r.outcome, Number(r.n)])).toEqual([
        ['captured', N - N / 4],
        ['declined', N / 4],
      ]);
      // v1 events reached the saga upcast: not loyalty members; v2 kept the producer's flag.
      for (const e of events) {
        const memo = (await system.client.workflow.getHandle(orderWorkflowId(e.orderId)).describe())
          .memo as unknown as SagaStartMemo;
        expect([e.eventVersion, memo.isLoyaltyMember]).toEqual([e.eventVersion, e.eventVersion === 2]);
      }
      expect(await ledgerOutcomes(scope)).toEqual({ STARTED: N });
    } finally {
      await system.stop();
    }
  });
});
