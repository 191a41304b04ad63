import type { Logger } from 'pino';

export type NoticeKind = 'ORDER_RECEIVED' | 'ORDER_CONFIRMED' | 'ORDER_FAILED';

export interface Notice {
  idempotencyKey: string;
  orderId: string;
  customerId: string;
  kind: NoticeKind;
  message: string;
}

/**
 * How a notice reaches the customer (e-mail, SMS, push...). Called inside the transaction that
 * records the notice: if delivery throws, the record rolls back and the activity retries, so a
 * channel that talks to the outside world delivers at least once and should pass the key along.
 */
export interface NotificationChannel {
  readonly name: string;
  deliver(notice: Notice): Promise<void>;
}

/** The default channel: the notifications table is the record, and the notice goes to the log. */
export function logChannel(logger: Logger): NotificationChannel {
  return {
    name: 'log',
    deliver(notice) {
      logger.info({ notice }, 'customer notified');
      return Promise.resolve();
    },
  };
}
