import type pg from 'pg';

import { runIdempotent } from '../../db/idempotent';
import { prepared } from '../../db/prepared';
import type { OutboxWriter } from '../../outbox/outbox-writer';
import type { NoticeKind, NotificationChannel } from '../../simulated-external/notification-channel';
import { notificationSent } from './notifications-events';

export interface NotificationsDeps {
  /** Pool logged in as the notifications role (schema `notifications` only). */
  db: pg.Pool;
  channel: NotificationChannel;
  /** Appends notification-sent in the transaction that records the notice. */
  outbox: OutboxWriter;
}

export interface NotifyCustomerInput {
  idempotencyKey: string;
  orderId: string;
  customerId: string;
  kind: NoticeKind;
  /** Why the order failed; only for ORDER_FAILED. */
  reason?: string;
}

export interface NotificationSent {
  idempotencyKey: string;
  channel: string;
  message: string;
}

function messageFor({ orderId, kind, reason }: NotifyCustomerInput): string {
  switch (kind) {
    case 'ORDER_RECEIVED':
      return `We received your order ${orderId}.`;
    case 'ORDER_CONFIRMED':
      return `Your order ${orderId} is confirmed.`;
    case 'ORDER_FAILED':
      return `Your order ${orderId} could not be completed: ${reason ?? 'unknown reason'}. You have not been charged.`;
  }
}

/** Activities of the notifications service. */
export function createNotificationsActivities({ db, channel, outbox }: NotificationsDeps) {
  return {
    /**
     * Records a notice to the customer and hands it to the delivery channel, in one transaction:
     * a notice is recorded (with its notifications.notification-sent event) if and only if the
     * channel accepted it. Idempotent by key: a repeat sends nothing and writes no second event. Not compensable (a sent message stays sent), so the saga sends notices only once the
     * outcome is decided.
     */
    notifyCustomer: async (input: NotifyCustomerInput): Promise<NotificationSent> => {
      return runIdempotent(db, 'notifications', input.idempotencyKey, 'notifyCustomer', async (tx) => {
        const message = messageFor(input);
        await tx.query(
          prepared(
            `INSERT INTO notifications.notifications (idempotency_key, order_id, customer_id, kind, message, channel)
           VALUES ($1, $2, $3, $4, $5, $6)`,
            [input.idempotencyKey, input.orderId, input.customerId, input.kind, message, channel.name],
          ),
        );
        // Before delivery: if the event cannot be written (e.g. registry down) nothing reaches the
        // customer, and the retry starts clean.
        const { idempotencyKey, orderId, customerId, kind } = input;
        await outbox.emit(tx, notificationSent({ idempotencyKey, orderId, customerId, kind, channel: channel.name }));
        await channel.deliver({
          idempotencyKey: input.idempotencyKey,
          orderId: input.orderId,
          customerId: input.customerId,
          kind: input.kind,
          message,
        });
        return { idempotencyKey: input.idempotencyKey, channel: channel.name, message };
      });
    },
  };
}

export type NotificationsActivities = ReturnType<typeof createNotificationsActivities>;
