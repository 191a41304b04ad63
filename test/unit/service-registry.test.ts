import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { WORKER_ROLES } from '../../src/config/settings';
import { DB_OWNERS } from '../../src/db/db-config';
import { OUTBOX_TABLES } from '../../src/outbox/outbox-constants';
import { MIGRATION_OWNERS } from '../../src/provision/plan';
import { ROLE_NEEDS } from '../../src/provision/verify';
import { LOYALTY_CONSUMED_TOPICS } from '../../src/services/loyalty/loyalty-events';
import {
  CHOREOGRAPHED_SERVICES,
  OUTBOX_SERVICE_NAMES,
  SERVICE_NAMES,
  SERVICE_REGISTRY,
} from '../../src/services/registry';
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
    expect(OUTBOX_SERVICE_NAMES).toEqual([...SERVICE_NAMES, 'loyalty']);
    expect(OUTBOX_TABLES).toEqual([
      'orders.outbox',
      'inventory.outbox',
      'payments.outbox',
      'notifications.outbox',
      'loyalty.outbox',
    ]);
    expect(WORKER_ROLES).toEqual(['saga', ...SERVICE_NAMES]);
    for (const s of SERVICE_REGISTRY) {
      expect(MIGRATION_OWNERS.find((o) => o.owner === s.schema)).toMatchObject({ schema: s.schema, role: s.role });
      expect(ROLE_NEEDS[s.settingsKey].writes).toEqual(s.topics);
      expect(ROLE_NEEDS[s.settingsKey].schemas).toContain(s.schema);
    }
  });

  it('lists the choreographed loyalty service: no task queue or worker, its own schema, consumer group topics and outbox', () => {
    expect(CHOREOGRAPHED_SERVICES.map((s) => s.name)).toEqual(['loyalty']);
    expect(Object.keys(taskQueuesFor(''))).not.toContain('loyalty');
    expect(WORKER_ROLES).not.toContain('loyalty');
    for (const s of CHOREOGRAPHED_SERVICES) {
      expect(existsSync(path.join(SRC, 'services', s.name, `${s.name}-consumer.ts`))).toBe(true);
      expect(existsSync(path.join(SRC, s.migrations))).toBe(true);
      expect(MIGRATION_OWNERS.find((o) => o.owner === s.schema)).toMatchObject({ schema: s.schema, role: s.role });
      expect(ROLE_NEEDS[s.settingsKey]).toMatchObject({ schemas: [s.schema], consumes: s.consumes, writes: s.topics });
    }
    // The consumer subscribes to exactly what the registry declares.
    expect([...LOYALTY_CONSUMED_TOPICS].sort()).toEqual([...CHOREOGRAPHED_SERVICES[0].consumes].sort());
  });

  it('stays loadable in the workflow sandbox: it imports nothing but the topic names', () => {
    const source = readFileSync(path.join(SRC, 'services', 'registry.ts'), 'utf8');
    const imports = [...source.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
    expect(imports).toEqual(['../events/topics']);
    const topics = readFileSync(path.join(SRC, 'events', 'topics.ts'), 'utf8');
    expect(topics).not.toMatch(/^import /m);
  });
});
