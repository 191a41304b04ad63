/**
 * The loyalty service's names, its one award rule, and the events it publishes. Pure (no I/O), so
 * provisioning's plan and tests can read the same declarations the consumer runs on.
 *
 * Choreographed, not orchestrated: nothing calls this service. It reacts to facts other services
 * published (`order.confirmed`, and what undoes a confirmed order) and publishes its own.
 */
import { stepEvent } from '../../events/event-factory';
import { loyaltyPointsAwardedV1Schema, loyaltyPointsRevokedV1Schema } from '../../events/generated/event-schemas';
import { CURRENCY_EXPONENTS } from '../../events/rules';
import { TOPICS } from '../../events/topics';

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

/** The idempotency key that names an order's loyalty events: one award and one revocation per order, ever. */
export function loyaltyKey(orderId: string): string {
  return `loyalty:${orderId}`;
}

/**
 * Points awarded for one order. A step event keyed by {@link loyaltyKey}, so handling the
 * confirmation again (after a crash before the commit) builds the same eventId and the outbox keeps one.
 */
export const pointsAwarded = stepEvent(loyaltyPointsAwardedV1Schema, {
  service: 'loyalty',
  topic: TOPICS.loyaltyPointsAwarded,
});

/** Points taken back from one order: at most one per order, whichever event undid it first. */
export const pointsRevoked = stepEvent(loyaltyPointsRevokedV1Schema, {
  service: 'loyalty',
  topic: TOPICS.loyaltyPointsRevoked,
});
