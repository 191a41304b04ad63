import type pg from 'pg';

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
}

/** Every service's activities, keyed by service, each built only from what that service owns. */
export function createServiceActivities({ pools, gateway, channel }: ActivityDeps) {
  return {
    orders: createOrdersActivities({ db: pools.orders }),
    inventory: createInventoryActivities({ db: pools.inventory }),
    payments: createPaymentsActivities({ db: pools.payments, gateway }),
    notifications: createNotificationsActivities({ db: pools.notifications, channel }),
  } satisfies Record<ServiceName, object>;
}

export type ServiceActivities = ReturnType<typeof createServiceActivities>;
