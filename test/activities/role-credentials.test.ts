import { spawnSync } from 'node:child_process';
import path from 'node:path';

import pg from 'pg';
import pino from 'pino';

import { startRoles } from '../../src/app/roles';
import { repoRoot } from '../../src/config/stack-config';
import { createMetrics } from '../../src/observability/metrics';
import { allSettings, testSettings } from '../support/settings';
import { uniqueName } from '../support/stack';

jest.setTimeout(120_000);

/**
 * Each service's worker holds only its own role's credentials: its settings section has only its
 * own PostgreSQL URL, the process refuses another's, and PostgreSQL refuses its role elsewhere.
 */
describe("a service worker holds only its own role's credentials", () => {
  it('the orders worker, started from its own settings, opens only the orders pool, which PostgreSQL refuses on payments', async () => {
    const settings = testSettings(['orders'], uniqueName('creds'), { LOG_LEVEL: 'silent' });
    const running = await startRoles(settings, ['orders'], {
      logger: pino({ level: 'silent' }),
      metrics: createMetrics('role-credentials-test'),
    });
    try {
      expect(Object.keys(running.pools)).toEqual(['orders']);
      const orders = running.pools.orders!;
      const who = await orders.query<{ user: string }>('SELECT current_user AS user');
      expect(who.rows[0]?.user).toBe('kts_orders');
      await expect(orders.query('SELECT count(*) FROM orders.orders')).resolves.toBeDefined();
      // insufficient_privilege: the schema is closed to every role but its owner.
      await expect(orders.query('SELECT count(*) FROM payments.payments')).rejects.toMatchObject({ code: '42501' });
      await expect(orders.query('DELETE FROM payments.payments')).rejects.toMatchObject({ code: '42501' });
      await expect(orders.query('SELECT count(*) FROM card_gateway.charges')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await running.stop();
    }
  });

  it('the payments role itself can read payments: the refusal above is about the role, not the table', async () => {
    const settings = testSettings(['payments'], uniqueName('creds'));
    const pool = new pg.Pool({ connectionString: settings.roles.payments.pgUrl, max: 1 });
    try {
      await expect(pool.query('SELECT count(*) FROM payments.payments')).resolves.toBeDefined();
    } finally {
      await pool.end();
    }
  });

  it('the orders worker process given the payments URL stops before it connects, with one line saying why', () => {
    const root = repoRoot();
    const res = spawnSync(path.join(root, 'node_modules', '.bin', 'tsx'), ['src/services/orders/orders-worker.ts'], {
      cwd: root,
      encoding: 'utf8',
      env: {
        ...process.env,
        KTS_PG_URL_PAYMENTS: allSettings.roles.provision.roleUrls.payments,
        KTS_METRICS_PORT: '0',
      },
      timeout: 60_000,
    });
    expect(res.status).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr.trim().split('\n')).toEqual([
      '✖ kts-orders-worker: KTS_PG_URL_PAYMENTS is set, but this process runs orders: only provision or payments ' +
        "may hold that credential; remove it from this process's environment",
    ]);
  });
});
