import { describeEvent } from '../../src/cli/history';
import type { OrderState, StoredEvent } from '../../src/event-store/order-state';
import { applyEvent, emptyOrderState, rebuildOrderState } from '../../src/event-store/order-state';

const ORDER = 'ord-parked-1';
const T0 = Date.parse('2026-03-01T10:00:00.000Z');

let seq = 0;
function ev(eventType: string, atSeconds: number, payload: Record<string, unknown> = {}): StoredEvent {
  seq += 1;
  return {
    seq,
    eventId: `evt-${seq}`,
    eventType,
    eventVersion: 1,
    orderId: ORDER,
    occurredAt: new Date(T0 + atSeconds * 1_000),
    payload: { orderId: ORDER, ...payload },
  };
}

const placed = () =>
  ev('order.placed', 0, {
    userId: 'cust-1',
    currency: 'EUR',
    totalMinor: 5_000,
    items: [{ sku: 'SKU-KETTLE', quantity: 2, unitPriceMinor: 2_500 }],
  });
const reserved = (t: number) => ev('inventory.stock-reserved', t);
const released = (t: number) => ev('inventory.stock-released', t);
const captured = (t: number) => ev('payments.payment-captured', t, { amountMinor: 5_000 });
const refunded = (t: number) => ev('payments.payment-refunded', t, { amountMinor: 5_000 });
const failed = (t: number) => ev('order.failed', t, { failureType: 'OrderNotPending', reason: 'confirm refused' });
const failedNotice = (t: number) => ev('notifications.notification-sent', t, { kind: 'ORDER_FAILED' });
const decision = (t: number, d: string, round: number, operator: string, reason: string | null, steps: string[]) =>
  ev('order.parked-decision', t, { decision: d, operator, reason, round, failedSteps: steps });

/** The saga's events when refundPayment exhausted its retries: the release and failOrder still ran. */
const parkedOnRefund = () => [placed(), reserved(1), captured(2), released(4), failed(5), failedNotice(6)];

describe('order state: parked sagas and operator decisions', () => {
  it('a compensated order is never parked', () => {
    const s = rebuildOrderState(ORDER, [placed(), reserved(1), captured(2), refunded(3), released(4), failed(5)]);
    expect(s.status).toBe('FAILED');
    expect(s.parked).toBeNull();
    expect(s.decisions).toEqual([]);
  });

  it('infers the parking from a charge still captured when the order failed', () => {
    const s = rebuildOrderState(ORDER, parkedOnRefund());
    expect(s.status).toBe('FAILED');
    expect(s.payment).toBe('CAPTURED');
    expect(s.paidMinor).toBe(5_000);
    expect(s.parked).toEqual({
      state: 'PARKED',
      round: 1,
      since: new Date(T0 + 5_000).toISOString(),
      failedSteps: ['refundPayment'],
      openSteps: ['refundPayment'],
    });
  });

  it('infers both steps when the refund and the release exhausted their retries', () => {
    const s = rebuildOrderState(ORDER, [placed(), reserved(1), captured(2), failed(5)]);
    expect(s.parked?.failedSteps).toEqual(['refundPayment', 'releaseStock']);
  });

  it('a retry records who decided and ends RETRIED once the refund lands', () => {
    const events = [...parkedOnRefund(), decision(60, 'RETRY', 1, 'alice', null, ['refundPayment']), refunded(61)];
    const retrying = rebuildOrderState(ORDER, events, new Date(T0 + 60_500));
    expect(retrying.parked?.state).toBe('RETRYING');
    expect(retrying.parked?.openSteps).toEqual(['refundPayment']);
    expect(retrying.decisions).toEqual([
      {
        eventId: events[6]!.eventId,
        decision: 'RETRY',
        operator: 'alice',
        reason: null,
        round: 1,
        failedSteps: ['refundPayment'],
        decidedAt: new Date(T0 + 60_000).toISOString(),
      },
    ]);

    const done = rebuildOrderState(ORDER, events);
    expect(done.parked).toMatchObject({ state: 'RETRIED', openSteps: [], since: new Date(T0 + 5_000).toISOString() });
    expect(done.payment).toBe('REFUNDED');
    expect(done.paidMinor).toBe(0);
    expect(done.status).toBe('FAILED');
  });

  it('a retry that parks again, then a manual resolution: every decision in order, with who and why', () => {
    const events = [
      ...parkedOnRefund(),
      decision(60, 'RETRY', 1, 'alice', 'gateway back?', ['refundPayment']),
      decision(120, 'RESOLVE_MANUALLY', 2, 'bob', 'refunded by hand in the gateway console', ['refundPayment']),
    ];
    const s = rebuildOrderState(ORDER, events);
    expect(s.parked).toMatchObject({ state: 'RESOLVED_MANUALLY', round: 2, openSteps: ['refundPayment'] });
    expect(s.decisions.map((d) => [d.decision, d.operator, d.reason, d.round])).toEqual([
      ['RETRY', 'alice', 'gateway back?', 1],
      ['RESOLVE_MANUALLY', 'bob', 'refunded by hand in the gateway console', 2],
    ]);
    // The money moved by hand is not an event: the store keeps showing what the services recorded.
    expect(s.payment).toBe('CAPTURED');
  });

  it('an abandon ends the parking as ABANDONED', () => {
    const s = rebuildOrderState(ORDER, [
      ...parkedOnRefund(),
      decision(60, 'ABANDON', 1, 'carol', 'customer charged back', ['refundPayment']),
    ]);
    expect(s.parked?.state).toBe('ABANDONED');
    expect(s.decisions[0]).toMatchObject({ decision: 'ABANDON', operator: 'carol', reason: 'customer charged back' });
  });

  it('a parking the facts cannot show (failOrder failed) appears with its first decision', () => {
    const events = [
      placed(),
      reserved(1),
      released(2),
      decision(60, 'RETRY', 1, 'dave', null, ['failOrder', 'notifyCustomer']),
      failed(61),
      failedNotice(62),
    ];
    const before = rebuildOrderState(ORDER, events, new Date(T0 + 30_000));
    expect(before.parked).toBeNull();
    const after = rebuildOrderState(ORDER, events);
    expect(after.parked).toMatchObject({
      state: 'RETRIED',
      since: new Date(T0 + 60_000).toISOString(),
      failedSteps: ['failOrder', 'notifyCustomer'],
      openSteps: [],
    });
    expect(after.status).toBe('FAILED');
  });

  it('a decision of an unknown kind counts but changes nothing', () => {
    const before = rebuildOrderState(ORDER, parkedOnRefund());
    const after: OrderState = applyEvent(before, decision(60, 'ESCALATE', 1, 'eve', 'x', ['refundPayment']));
    expect(after.eventCount).toBe(before.eventCount + 1);
    expect(after.parked).toEqual(before.parked);
    expect(after.decisions).toEqual([]);
  });

  it('the empty state has no parking', () => {
    expect(emptyOrderState(ORDER)).toMatchObject({ parked: null, decisions: [] });
  });
});

describe('orders history: the decision line', () => {
  it('says who decided what, on which steps, and why', () => {
    expect(
      describeEvent('order.parked-decision', {
        decision: 'RESOLVE_MANUALLY',
        operator: 'bob',
        reason: 'refunded by hand',
        round: 1,
        failedSteps: ['refundPayment'],
      }),
    ).toBe('  RESOLVE_MANUALLY of refundPayment (round 1) by bob: refunded by hand');
    expect(
      describeEvent('order.parked-decision', {
        decision: 'RETRY',
        operator: 'alice',
        reason: null,
        round: 2,
        failedSteps: ['refundPayment', 'releaseStock'],
      }),
    ).toBe('  RETRY of refundPayment, releaseStock (round 2) by alice');
    expect(describeEvent('order.failed', { reason: 'x' })).toBe('');
  });
});

describe("the loyalty service in an order's story", () => {
  it('folds points awarded and revoked into the state, and describes both events', () => {
    const awarded = ev('loyalty.points-awarded', 9, { customerId: 'cust-1', points: 50 });
    const revoked = ev('loyalty.points-revoked', 12, {
      customerId: 'cust-1',
      points: 50,
      reason: 'payments.payment-refunded',
    });
    expect(rebuildOrderState(ORDER, [placed(), awarded]).loyaltyPoints).toBe(50);
    expect(rebuildOrderState(ORDER, [placed(), awarded, revoked]).loyaltyPoints).toBe(0);
    expect(describeEvent('loyalty.points-awarded', awarded.payload)).toBe('  +50 points to cust-1');
    expect(describeEvent('loyalty.points-revoked', revoked.payload)).toBe(
      '  -50 points from cust-1 (payments.payment-refunded)',
    );
  });
});
