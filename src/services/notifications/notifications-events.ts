/**
 * The events the notifications service emits (see src/events/event-factory.ts):
 * `await outbox.emit(tx, notificationSent({ idempotencyKey, orderId, customerId, kind, channel }))`.
 */
import { stepEvent } from '../../events/event-factory';
import { notificationsNotificationSentV1Schema } from '../../events/generated/event-schemas';
import { TOPICS } from '../../events/topics';

/** A notice was handed to the customer's channel (notifyCustomer). */
export const notificationSent = stepEvent(notificationsNotificationSentV1Schema, {
  service: 'notifications',
  topic: TOPICS.notificationSent,
});
