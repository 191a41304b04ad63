import { DB_OWNERS } from '../../src/db/db-config';
import { migrateAll, readMigrations } from '../../src/db/migrate';
import type { DbHarness } from '../support/db-harness';
import { openDb } from '../support/db-harness';

describe('migrations', () => {
  let db: DbHarness;
  beforeAll(async () => {
    db = await openDb(1);
  });
  afterAll(() => db.close());

  it('re-runs as a no-op and records every migration file of every schema', async () => {
    const reports = await migrateAll(db.cfg);
    for (const owner of DB_OWNERS) {
      const report = reports.find((r) => r.schema === owner);
      const files = await readMigrations(owner);
      expect(report).toEqual({ schema: owner, applied: [], alreadyApplied: files.length });
      const { rows } = await db.admin.query<{ version: number; checksum: string }>(
        `SELECT version, checksum FROM ${owner}.schema_migrations ORDER BY version`,
      );
      expect(rows).toEqual(files.map((f) => ({ version: f.version, checksum: f.checksum })));
    }
  });

  it('runs safely from several processes at once', async () => {
    const reports = await Promise.all([migrateAll(db.cfg), migrateAll(db.cfg), migrateAll(db.cfg)]);
    expect(reports.flat().every((r) => r.applied.length === 0)).toBe(true);
  });

  it('gives each service a role that owns its schema and can touch no other', async () => {
    const tables: Record<string, string> = {
      orders: 'orders.orders',
      inventory: 'inventory.stock',
      payments: 'payments.payments',
      notifications: 'notifications.notifications',
    };
    for (const [service, pool] of Object.entries(db.pools)) {
      for (const [other, table] of Object.entries(tables)) {
        const attempt = pool.query(`SELECT count(*) FROM ${table}`);
        if (other === service) await expect(attempt).resolves.toBeDefined();
        else await expect(attempt).rejects.toMatchObject({ code: '42501' }); // insufficient_privilege
      }
      await expect(pool.query('CREATE TABLE public.kts_probe (id int)')).rejects.toMatchObject({ code: '42501' });
    }
    const owners = await db.admin.query<{ nspname: string; owner: string }>(
      `SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = ANY($1)`,
      [[...DB_OWNERS]],
    );
    expect(Object.fromEntries(owners.rows.map((r) => [r.nspname, r.owner]))).toEqual(
      Object.fromEntries(DB_OWNERS.map((o) => [o, `kts_${o}`])),
    );
  });
});
