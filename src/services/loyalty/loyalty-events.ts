/**
 * The loyalty service's names, its one award rule, and the events it publishes. Pure (no I/O), so
 * provisioning's plan and tests can read the same declarations the consumer runs on.
 *
 * Choreographed, not orchestrated: nothing calls this service. It reacts to facts other services
 * published (`order.confirmed`, and what undoes a confirmed order) and publishes its own.
 */
import { CURRENCY_EXPONENTS } from '../../events/rules';
import type { LoyaltyPointsAwardedV1, LoyaltyPointsRevokedV1 } from '../../events/generated/event-schemas';
import { TOPICS } from '../../events/topics';
import { outboxEventId } from '../../outbox/event-id';

/** Dead letters of every topic the loyalty consumer reads: its own, so its poison never mixes with another group's. */
export const LOYALTY_DEAD_LETTER_TOPIC = 'loyalty.dlq';

/** The fact that earns points. */
export const LOYALTY_AWARD_TOPIC = TOPICS.orderConfirmed;

/**
 * Facts that undo a confirmed order and so take its points back: the payment was refunded (the saga
 * compensating after the pivot), or the order failed after it had been confirmed.
 */
export const LOYALTY_UNDO_TOPICS = [TOPICS.paymentRefunded, TOPICS.orderFailed] as const;

/** Canonical topics the loyalty consumer subscribes to (prefixed by the scope at run time). */
export const LOYALTY_CONSUMED_TOPICS: readonly string[] = [LOYALTY_AWARD_TOPIC, ...LOYALTY_UNDO_TOPICS];

/**
 * THE award rule, and the only place it lives: one point per whole unit of the order's currency for
 * a loyalty member (minor units truncated: 33.99 EUR earns 33), none for anyone else. A currency
 * this build does not know earns nothing rather than a guess (validation refuses it before here).
 */
export function pointsFor(order: { isLoyaltyMember: boolean; totalMinor: number; currency: string }): number {
  if (!order.isLoyaltyMember) return 0;
  const exponent = CURRENCY_EXPONENTS[order.currency];
  if (exponent === undefined || order.totalMinor <= 0) return 0;
  return Math.floor(order.totalMinor / 10 ** exponent);
}

/**
 * The points-awarded event of one order. Its eventId derives from the order, so handling the
 * confirmation again (after a crash before the commit) builds the same event and the outbox keeps one.
 */
export function pointsAwardedEvent(input: {
  orderId: string;
  customerId: string;
  points: number;
  totalMinor: number;
  currency: string;
  sourceEventId: string;
  occurredAt?: number;
}): LoyaltyPointsAwardedV1 {
  return {
    eventId: outboxEventId(`loyalty:${input.orderId}`, TOPICS.loyaltyPointsAwarded),
    eventType: 'loyalty.points-awarded',
    eventVersion: 1,
    occurredAt: input.occurredAt ?? Date.now(),
    orderId: input.orderId,
    customerId: input.customerId,
    points: input.points,
    totalMinor: input.totalMinor,
    currency: input.currency,
    sourceEventId: input.sourceEventId,
  };
}

/** The points-revoked event of one order: at most one per order, whichever event undid it first. */
export function pointsRevokedEvent(input: {
  orderId: string;
  customerId: string;
  points: number;
  reason: string;
  sourceEventId: string;
  occurredAt?: number;
}): LoyaltyPointsRevokedV1 {
  return {
    eventId: outboxEventId(`loyalty:${input.orderId}`, TOPICS.loyaltyPointsRevoked),
    eventType: 'loyalty.points-revoked',
    eventVersion: 1,
    occurredAt: input.occurredAt ?? Date.now(),
    orderId: input.orderId,
    customerId: input.customerId,
    points: input.points,
    reason: input.reason,
    sourceEventId: input.sourceEventId,
  };
}
