import type pg from 'pg';

import type { OutboxWriter } from '../outbox/outbox-writer';
import type { CardGateway } from '../simulated-external/card-gateway';
import type { NotificationChannel } from '../simulated-external/notification-channel';
import { createInventoryActivities } from './inventory/inventory-activities';
import { createNotificationsActivities } from './notifications/notifications-activities';
import { createOrdersActivities } from './orders/orders-activities';
import { createPaymentsActivities } from './payments/payments-activities';
import type { ServiceName } from './registry';

export interface ActivityDeps {
  /** One pool per service, each logged in as that service's role. */
  pools: Record<ServiceName, pg.Pool>;
  gateway: CardGateway;
  channel: NotificationChannel;
  /** Appends each service's domain events to its own outbox, in the transaction of the change. */
  outbox: OutboxWriter;
}

/** Every service's activities, keyed by service, each built only from what that service owns. */
export function createServiceActivities({ pools, gateway, channel, outbox }: ActivityDeps) {
  return {
    orders: createOrdersActivities({ db: pools.orders, outbox }),
    inventory: createInventoryActivities({ db: pools.inventory, outbox }),
    payments: createPaymentsActivities({ db: pools.payments, gateway, outbox }),
    notifications: createNotificationsActivities({ db: pools.notifications, channel, outbox }),
  } satisfies Record<ServiceName, object>;
}

export type ServiceActivities = ReturnType<typeof createServiceActivities>;
