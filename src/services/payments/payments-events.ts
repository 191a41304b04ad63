/**
 * The events the payments service emits, one factory each (see src/events/event-factory.ts):
 * `await outbox.emit(tx, paymentCaptured({ idempotencyKey, orderId, chargeId, amountMinor, currency }))`.
 */
import { stepEvent } from '../../events/event-factory';
import { paymentsPaymentCapturedV1Schema, paymentsPaymentRefundedV1Schema } from '../../events/generated/event-schemas';
import { TOPICS } from '../../events/topics';

/** The gateway captured an order's charge (chargePayment). */
export const paymentCaptured = stepEvent(paymentsPaymentCapturedV1Schema, {
  service: 'payments',
  topic: TOPICS.paymentCaptured,
});

/** A captured charge was refunded (refundPayment, the compensation of chargePayment). */
export const paymentRefunded = stepEvent(paymentsPaymentRefundedV1Schema, {
  service: 'payments',
  topic: TOPICS.paymentRefunded,
});
