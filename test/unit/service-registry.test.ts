import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { WORKER_ROLES } from '../../src/config/settings';
import { DB_OWNERS } from '../../src/db/db-config';
import { OUTBOX_TABLES } from '../../src/outbox/outbox-constants';
import { MIGRATION_OWNERS } from '../../src/provision/plan';
import { ROLE_NEEDS } from '../../src/provision/verify';
import { OUTBOX_SERVICE_NAMES, SERVICE_NAMES, SERVICE_REGISTRY } from '../../src/services/registry';
import { taskQueuesFor } from '../../src/shared/saga-contract';

const SRC = path.join(__dirname, '..', '..', 'src');

describe('service registry', () => {
  it('lists the four domain services, each with its folder of activities, worker entry and migrations', () => {
    expect(SERVICE_NAMES).toEqual(['orders', 'inventory', 'payments', 'notifications']);
    for (const s of SERVICE_REGISTRY) {
      const folder = path.join(SRC, 'services', s.name);
      expect(existsSync(path.join(folder, `${s.name}-activities.ts`))).toBe(true);
      expect(existsSync(path.join(folder, `${s.name}-worker.ts`))).toBe(true);
      expect(existsSync(path.join(SRC, s.migrations))).toBe(true);
      expect(s.role).toBe(`kts_${s.schema}`);
    }
  });

  it('is what the task queues, schema owners, outboxes, migration owners, worker roles and role needs are made of', () => {
    expect(taskQueuesFor('t')).toEqual({
      saga: 't.order-saga',
      orders: 't.orders',
      inventory: 't.inventory',
      payments: 't.payments',
      notifications: 't.notifications',
    });
    expect(DB_OWNERS).toEqual([...SERVICE_NAMES, 'card_gateway']);
    expect(OUTBOX_SERVICE_NAMES).toEqual(SERVICE_NAMES);
    expect(OUTBOX_TABLES).toEqual(['orders.outbox', 'inventory.outbox', 'payments.outbox', 'notifications.outbox']);
    expect(WORKER_ROLES).toEqual(['saga', ...SERVICE_NAMES]);
    for (const s of SERVICE_REGISTRY) {
      expect(MIGRATION_OWNERS.find((o) => o.owner === s.schema)).toMatchObject({ schema: s.schema, role: s.role });
      expect(ROLE_NEEDS[s.settingsKey].writes).toEqual(s.topics);
      expect(ROLE_NEEDS[s.settingsKey].schemas).toContain(s.schema);
    }
  });

  it('stays loadable in the workflow sandbox: it imports nothing but the topic names', () => {
    const source = readFileSync(path.join(SRC, 'services', 'registry.ts'), 'utf8');
    const imports = [...source.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
    expect(imports).toEqual(['../events/topics']);
    const topics = readFileSync(path.join(SRC, 'events', 'topics.ts'), 'utf8');
    expect(topics).not.toMatch(/^import /m);
  });
});
