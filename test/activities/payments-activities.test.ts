import { outboxEventId } from '../../src/outbox/event-id';
import { createPaymentsActivities } from '../../src/services/payments/payments-activities';
import { FailureType } from '../../src/shared/saga-contract';
import type { GatewayBehaviour } from '../../src/simulated-external/card-gateway';
import { DECLINED_CARD_TOKEN, SimulatedCardGateway } from '../../src/simulated-external/card-gateway';
import type { DbHarness } from '../support/db-harness';
import { failureOf, openDb, outboxEvents, runActivity } from '../support/db-harness';
import { uniqueName } from '../support/stack';

const calm: GatewayBehaviour = { declineRate: 0, transientErrorRate: 0, latencyMs: { min: 0, max: 0 } };

describe('payments activities and the simulated card gateway', () => {
  let db: DbHarness;
  beforeAll(async () => {
    db = await openDb();
  });
  afterAll(() => db.close());

  const paymentsWith = (behaviour: GatewayBehaviour) => {
    const gateway = new SimulatedCardGateway(db.pools.card_gateway, behaviour);
    return { gateway, acts: createPaymentsActivities({ db: db.pools.payments, gateway, outbox: db.outbox }) };
  };
  const chargeInput = (token = 'tok_visa') => ({
    idempotencyKey: uniqueName('order') + '/chargePayment',
    orderId: uniqueName('ord'),
    amountMinor: 12_345,
    currency: 'EUR',
    paymentToken: token,
  });
  const gatewayCharges = async (key: string) =>
    (
      await db.admin.query<{ outcome: string; amount_minor: string; refunded_minor: string }>(
        'SELECT outcome, amount_minor, refunded_minor FROM card_gateway.charges WHERE idempotency_key = $1',
        [key],
      )
    ).rows;
  const payments = async (orderId: string) =>
    (
      await db.admin.query<{ status: string; amount_minor: string }>(
        'SELECT status, amount_minor FROM payments.payments WHERE order_id = $1',
        [orderId],
      )
    ).rows;
  const requests = async (key: string) =>
    (
      await db.admin.query<{ result: string }>(
        'SELECT result FROM card_gateway.requests WHERE idempotency_key = $1 ORDER BY request_id',
        [key],
      )
    ).rows.map((r) => r.result);

  it('chargePayment captures once; a second run neither charges again nor calls the gateway', async () => {
    const { acts } = paymentsWith(calm);
    const input = chargeInput();
    const first = await runActivity(acts.chargePayment, input);
    const second = await runActivity(acts.chargePayment, input);
    expect(second).toEqual(first);
    expect(first).toMatchObject({ amountMinor: 12_345, currency: 'EUR', chargeKey: input.idempotencyKey });
    expect(await gatewayCharges(input.idempotencyKey)).toEqual([
      { outcome: 'captured', amount_minor: '12345', refunded_minor: '0' },
    ]);
    expect(await payments(input.orderId)).toEqual([{ status: 'CAPTURED', amount_minor: '12345' }]);
    expect(await requests(input.idempotencyKey)).toEqual(['captured']);
    expect(await outboxEvents(db, 'payments', input.orderId)).toEqual([
      {
        topic: `${db.outbox.topicPrefix}.payments.payment-captured`,
        aggregateType: 'order',
        aggregateId: input.orderId,
        type: 'payments.payment-captured',
        event: {
          eventId: outboxEventId(input.idempotencyKey, 'payments.payment-captured'),
          eventType: 'payments.payment-captured',
          eventVersion: 1,
          occurredAt: expect.any(Number) as number,
          orderId: input.orderId,
          chargeId: first.gatewayChargeId,
          amountMinor: 12_345,
          currency: 'EUR',
        },
      },
    ]);
  });

  it('the gateway honours its idempotency key: a retry after a lost answer books nothing more', async () => {
    const { gateway, acts } = paymentsWith(calm);
    const input = chargeInput();
    // The gateway booked the charge but the activity died before recording it.
    await gateway.charge({ ...input, cardToken: input.paymentToken });
    const payment = await runActivity(acts.chargePayment, input);
    expect(payment.amountMinor).toBe(12_345);
    expect(await gatewayCharges(input.idempotencyKey)).toHaveLength(1);
    expect(await payments(input.orderId)).toEqual([{ status: 'CAPTURED', amount_minor: '12345' }]);
  });

  it('a reused gateway key with a different amount is refused', async () => {
    const { gateway } = paymentsWith(calm);
    const input = chargeInput();
    await gateway.charge({ ...input, cardToken: input.paymentToken });
    const failure = await failureOf(gateway.charge({ ...input, amountMinor: 1, cardToken: input.paymentToken }));
    expect(failure).toMatchObject({ type: FailureType.IdempotencyKeyReused, nonRetryable: true });
  });

  it('a declined card is non-retryable PaymentDeclined, the same on a repeat, recorded once', async () => {
    const { acts } = paymentsWith({ ...calm, declineRate: 1 });
    const input = chargeInput();
    const first = await failureOf(runActivity(acts.chargePayment, input));
    const second = await failureOf(runActivity(acts.chargePayment, input));
    expect(first).toMatchObject({ type: FailureType.PaymentDeclined, nonRetryable: true });
    expect(second).toEqual(first);
    expect(await gatewayCharges(input.idempotencyKey)).toEqual([
      { outcome: 'declined', amount_minor: '12345', refunded_minor: '0' },
    ]);
    expect(await payments(input.orderId)).toEqual([{ status: 'DECLINED', amount_minor: '12345' }]);
    // A decline moved no money: the DECLINED row is kept, but nothing is announced as captured.
    expect(await outboxEvents(db, 'payments', input.orderId)).toEqual([]);
  });

  it('the declining test card declines even at a zero decline rate', async () => {
    const { acts } = paymentsWith(calm);
    const failure = await failureOf(runActivity(acts.chargePayment, chargeInput(DECLINED_CARD_TOKEN)));
    expect(failure.type).toBe(FailureType.PaymentDeclined);
  });

  it('a transient gateway error is retryable GatewayUnavailable and leaves nothing behind', async () => {
    const { acts } = paymentsWith({ ...calm, transientErrorRate: 1 });
    const input = chargeInput();
    const failure = await failureOf(runActivity(acts.chargePayment, input));
    expect(failure).toMatchObject({ type: FailureType.GatewayUnavailable, nonRetryable: false });
    expect(await gatewayCharges(input.idempotencyKey)).toEqual([]);
    expect(await payments(input.orderId)).toEqual([]);
    expect(await outboxEvents(db, 'payments', input.orderId)).toEqual([]);
    // Once the gateway is back, the same key goes through.
    const { acts: healthy } = paymentsWith(calm);
    await runActivity(healthy.chargePayment, input);
    expect(await requests(input.idempotencyKey)).toEqual(['unavailable', 'captured']);
  });

  it('refundPayment refunds a capture once; a second run changes nothing', async () => {
    const { acts } = paymentsWith(calm);
    const input = chargeInput();
    await runActivity(acts.chargePayment, input);
    const refund = { idempotencyKey: uniqueName('k'), chargeKey: input.idempotencyKey, orderId: input.orderId };
    const first = await runActivity(acts.refundPayment, refund);
    const second = await runActivity(acts.refundPayment, refund);
    expect(second).toEqual(first);
    expect(first.amountMinor).toBe(12_345);
    // A different refund key for a fully refunded charge is refused rather than paying out twice.
    const again = await failureOf(runActivity(acts.refundPayment, { ...refund, idempotencyKey: uniqueName('k') }));
    expect(again.type).toBe(FailureType.IdempotencyKeyReused);
    expect(await gatewayCharges(input.idempotencyKey)).toEqual([
      { outcome: 'captured', amount_minor: '12345', refunded_minor: '12345' },
    ]);
    expect(await payments(input.orderId)).toEqual([{ status: 'REFUNDED', amount_minor: '12345' }]);
    const events = await outboxEvents(db, 'payments', input.orderId);
    expect(events.map((e) => e.type)).toEqual(['payments.payment-captured', 'payments.payment-refunded']);
    expect(events[1]).toMatchObject({
      topic: `${db.outbox.topicPrefix}.payments.payment-refunded`,
      event: {
        eventId: outboxEventId(refund.idempotencyKey, 'payments.payment-refunded'),
        eventType: 'payments.payment-refunded',
        eventVersion: 1,
        orderId: input.orderId,
        chargeId: events[0]?.event.chargeId,
        refundId: first.gatewayRefundId,
        amountMinor: 12_345,
        currency: 'EUR',
      },
    });
  });

  it('refundPayment finds a charge the payments table never recorded, and records it refunded', async () => {
    const { gateway, acts } = paymentsWith(calm);
    const input = chargeInput();
    await gateway.charge({ ...input, cardToken: input.paymentToken });
    const refund = await runActivity(acts.refundPayment, {
      idempotencyKey: uniqueName('k'),
      chargeKey: input.idempotencyKey,
      orderId: input.orderId,
    });
    expect(refund.amountMinor).toBe(12_345);
    expect(await payments(input.orderId)).toEqual([{ status: 'REFUNDED', amount_minor: '12345' }]);
    // The capture was never recorded by us, so only the refund is announced.
    const events = await outboxEvents(db, 'payments', input.orderId);
    expect(events.map((e) => e.event)).toMatchObject([
      { eventType: 'payments.payment-refunded', amountMinor: 12_345, refundId: refund.gatewayRefundId },
    ]);
  });

  it('refundPayment with nothing captured (no charge, or declined) is a no-op', async () => {
    const { acts } = paymentsWith({ ...calm, declineRate: 1 });
    const declined = chargeInput();
    await failureOf(runActivity(acts.chargePayment, declined));
    for (const chargeKey of [declined.idempotencyKey, uniqueName('never-charged')]) {
      const refund = await runActivity(acts.refundPayment, {
        idempotencyKey: uniqueName('k'),
        chargeKey,
        orderId: declined.orderId,
      });
      expect(refund).toEqual({ chargeKey, gatewayRefundId: null, amountMinor: 0 });
    }
    expect(await payments(declined.orderId)).toEqual([{ status: 'DECLINED', amount_minor: '12345' }]);
    expect(await outboxEvents(db, 'payments', declined.orderId)).toEqual([]);
  });
});
