/**
 * Topic names and the subject naming rule. Plain constants with no imports, so workflows, workers and
 * clients can all share them (the saga contract module may re-export them).
 */
export const TOPICS = {
  orderPlaced: 'order.placed',
  orderCancelled: 'order.cancelled',
  orderConfirmed: 'order.confirmed',
  orderFailed: 'order.failed',
  /** An operator's decision on a parked saga (retry, resolved by hand, abandoned): the audit trail. */
  orderParkedDecision: 'order.parked-decision',
  stockReserved: 'inventory.stock-reserved',
  stockReleased: 'inventory.stock-released',
  paymentCaptured: 'payments.payment-captured',
  paymentRefunded: 'payments.payment-refunded',
  notificationSent: 'notifications.notification-sent',
  /** Published by the loyalty service (choreographed: it reacts to order events, the saga never calls it). */
  loyaltyPointsAwarded: 'loyalty.points-awarded',
  loyaltyPointsRevoked: 'loyalty.points-revoked',
} as const;

/** Suffix of every dead-letter topic: poison from `order.placed` goes to `order.placed.dlq`. */
export const DEAD_LETTER_SUFFIX = '.dlq';

export function deadLetterTopic(topic: string): string {
  return `${topic}${DEAD_LETTER_SUFFIX}`;
}

/** Confluent TopicNameStrategy: a topic's values are registered under `<topic>-value`. */
export function valueSubject(topic: string): string {
  return `${topic}-value`;
}
