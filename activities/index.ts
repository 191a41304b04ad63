import type pg from 'pg';

import type { OutboxWriter } from '../src/outbox/outbox-writer';
import type { CardGateway } from '../src/services/card-gateway';
import type { NotificationChannel } from '../src/services/notification-channel';
import type { ServiceName } from '../src/shared/saga-contract';
import { createInventoryActivities } from './inventory-activities';
import { createNotificationsActivities } from './notifications-activities';
import { createOrdersActivities } from './orders-activities';
import { createPaymentsActivities } from './payments-activities';

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
