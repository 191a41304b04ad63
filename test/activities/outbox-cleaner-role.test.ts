import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';

import pg from 'pg';
import pino from 'pino';

import { startRoles } from '../../src/app/roles';
import { repoRoot } from '../../src/config/stack-config';
import { createMetrics } from '../../src/observability/metrics';
import { cleanOutboxOnce } from '../../src/outbox/outbox-cleaner';
import type { LoginRoleStep } from '../../src/provision/plan';
import { buildPlan } from '../../src/provision/plan';
import { runProvision } from '../../src/provision/run';
import { provisionSettingsFrom } from '../../src/provision/settings';
import { verifyRoles } from '../../src/provision/verify';
import { OUTBOX_SERVICE_NAMES } from '../../src/services/registry';
import { allSettings, testSettings } from '../support/settings';

jest.setTimeout(120_000);

const provision = provisionSettingsFrom(allSettings);
const loginRolePlan = buildPlan({ ...provision.plan, include: ['login-role'] });
const cleanerUrl = testSettings(['outboxCleaner']).roles.outboxCleaner.pgUrl;
const OUTBOXES = OUTBOX_SERVICE_NAMES.map((s) => `${s}.outbox`);

/**
 * The outbox cleaner has a database role of its own: provisioning creates it with SELECT and DELETE
 * on the four services' outbox tables and nothing else, and it can neither read nor write any
 * other table, nor become another role.
 */
describe("the outbox cleaner's own database role", () => {
  const admin = new pg.Pool({ connectionString: allSettings.roles.provision.adminUrl, max: 2 });
  const cleaner = new pg.Pool({ connectionString: cleanerUrl, max: 2 });

  afterAll(async () => {
    // Whatever a failed test left on the role, provisioning takes it back to its declaration.
    await runProvision(loginRolePlan, provision.targets).catch(() => undefined);
    await cleaner.end();
    await admin.end();
  });

  it('is made by provisioning idempotently; a privilege granted by hand is reported and revoked', async () => {
    expect(loginRolePlan.map((s) => s.id)).toEqual(['login-role:kts_outbox_cleaner']);
    await runProvision(loginRolePlan, provision.targets);
    const again = await runProvision(loginRolePlan, provision.targets);
    expect(again.steps.map((s) => [s.outcome, s.detail])).toEqual([
      ['unchanged', 'exists with only its declared privileges'],
    ]);
    // Someone widens the role by hand: --check says what it would undo, apply undoes it.
    await admin.query('GRANT SELECT, UPDATE ON orders.orders TO kts_outbox_cleaner');
    await admin.query('GRANT kts_payments TO kts_outbox_cleaner');
    const check = await runProvision(loginRolePlan, provision.targets, { mode: 'check' });
    expect(check.steps[0]?.outcome).toBe('missing');
    for (const fragment of [
      'SELECT ON "orders"."orders"',
      'UPDATE ON "orders"."orders"',
      'MEMBERSHIP "kts_payments"',
    ]) {
      expect(check.steps[0]?.detail).toContain(fragment);
    }
    const fixed = await runProvision(loginRolePlan, provision.targets);
    expect(fixed.steps[0]?.outcome).toBe('changed');
    expect(fixed.steps[0]?.detail).toMatch(/^revoked /);
    const after = await runProvision(loginRolePlan, provision.targets, { mode: 'check' });
    expect(after.steps[0]).toMatchObject({ outcome: 'ok' });
    await expect(cleaner.query('SELECT count(*) FROM orders.orders')).rejects.toMatchObject({ code: '42501' });
  });

  it('logs in as kts_outbox_cleaner and holds privileges on the four outboxes only: SELECT and DELETE', async () => {
    const who = await cleaner.query<{ user: string }>('SELECT current_user AS user');
    expect(who.rows[0]?.user).toBe('kts_outbox_cleaner');
    // Every table, view and sequence of the database, as the cleaner sees its own rights on it.
    const rights = await cleaner.query<{ name: string; privileges: string[] }>(
      `SELECT n.nspname || '.' || c.relname AS name,
              array(SELECT p FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p
                     WHERE has_table_privilege(current_user, c.oid, p)) AS privileges
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`,
    );
    const held = Object.fromEntries(rights.rows.filter((r) => r.privileges.length).map((r) => [r.name, r.privileges]));
    expect(held).toEqual(Object.fromEntries(OUTBOXES.map((t) => [t, ['SELECT', 'DELETE']])));
    // The services' own tables are there to be refused (the check above is not vacuous).
    const names = new Set(rights.rows.map((r) => r.name));
    for (const t of ['orders.orders', 'payments.payments', 'card_gateway.charges', 'ingress.processed_events']) {
      expect(names).toContain(t);
    }
  });

  it('cannot read or write any other table, nor insert or change outbox rows, nor become a service', async () => {
    const refused = async (sql: string) => {
      const err = await cleaner.query(sql).then(
        () => 'allowed',
        (e: { code?: string }) => e.code,
      );
      return [sql, err];
    };
    const attempts = [
      'SELECT count(*) FROM orders.orders',
      'SELECT count(*) FROM orders.api_requests',
      'SELECT count(*) FROM orders.schema_migrations',
      'DELETE FROM orders.orders WHERE false',
      'SELECT count(*) FROM inventory.stock',
      "UPDATE inventory.stock SET available = available WHERE sku = 'none'",
      'SELECT count(*) FROM payments.payments',
      'SELECT count(*) FROM notifications.notifications',
      'SELECT count(*) FROM card_gateway.charges',
      'SELECT count(*) FROM ingress.processed_events',
      'SELECT count(*) FROM event_store.events',
      "UPDATE orders.outbox SET type = type WHERE id = '00000000-0000-0000-0000-000000000000'",
      "INSERT INTO inventory.outbox (id, aggregatetype, aggregateid, type, topic, payload) VALUES (gen_random_uuid(), 'x', 'x', 'x', 'x', '')",
      'TRUNCATE payments.outbox',
      'CREATE TABLE public.cleaner_was_here (x int)',
      'SET ROLE kts_orders',
    ];
    const results = await Promise.all(attempts.map(refused));
    // 42501 insufficient_privilege for every one of them.
    expect(results).toEqual(attempts.map((sql) => [sql, '42501']));
  });

  it('reads and deletes outbox rows: what it exists to do', async () => {
    const id = randomUUID();
    // A row for a topic no connector publishes, written by the superuser as a service would.
    await admin.query(
      `INSERT INTO notifications.outbox (id, aggregatetype, aggregateid, type, topic, payload)
       VALUES ($1, 'order', $2, 'test.cleaner', 'nowhere.cleaner-role-test', '\\x00')`,
      [id, `ord-${id}`],
    );
    for (const table of OUTBOXES) await expect(cleaner.query(`SELECT count(*) FROM ${table}`)).resolves.toBeDefined();
    // The cleaner's own watermark and slot queries run as this role (a slot that does not exist: nothing deleted).
    const round = await cleanOutboxOnce({ slotName: `no_such_slot_${id.slice(0, 8)}`, db: cleaner, waitMs: 300 });
    expect(round).toEqual({ deleted: {}, confirmed: false });
    const gone = await cleaner.query('DELETE FROM notifications.outbox WHERE id = $1', [id]);
    expect(gone.rowCount).toBe(1);
  });

  it('verifies its grants at start-up as itself, and stops with one line naming what to run when one is missing', async () => {
    const settings = testSettings(['outboxCleaner'], '', { LOG_LEVEL: 'silent' });
    const running = await startRoles(settings, ['outboxCleaner'], {
      logger: pino({ level: 'silent' }),
      metrics: createMetrics('outbox-cleaner-role-test'),
    });
    await running.stop();
    expect(Object.keys(running.pools)).toEqual([]);
    const step = loginRolePlan[0] as LoginRoleStep;
    await admin.query('REVOKE DELETE ON payments.outbox FROM kts_outbox_cleaner');
    try {
      await expect(verifyRoles(['outboxCleaner'], { schemaUrls: {}, loginUrl: cleanerUrl })).rejects.toThrow(
        'kts_outbox_cleaner lacks DELETE on payments.outbox: run `npm run provision`',
      );
    } finally {
      const fixed = await runProvision([step], provision.targets);
      expect(fixed.steps[0]?.detail).toBe('granted DELETE ON "payments"."outbox"');
    }
    await expect(verifyRoles(['outboxCleaner'], { schemaUrls: {}, loginUrl: cleanerUrl })).resolves.toBeUndefined();
  });

  it('the outbox cleaner process given a service URL stops before it connects, with one line saying why', () => {
    const root = repoRoot();
    const res = spawnSync(path.join(root, 'node_modules', '.bin', 'tsx'), ['src/outbox/main.ts'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, KTS_PG_URL_ORDERS: allSettings.roles.provision.roleUrls.orders, KTS_METRICS_PORT: '0' },
      timeout: 60_000,
    });
    expect(res.status).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr.trim().split('\n')).toEqual([
      '✖ kts-outbox-cleaner: KTS_PG_URL_ORDERS is set, but this process runs outboxCleaner: only provision or orders ' +
        "may hold that credential; remove it from this process's environment",
    ]);
  });
});
