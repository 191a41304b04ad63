import { randomBytes } from 'node:crypto';
import path from 'node:path';

import pg from 'pg';

import { DB_OWNERS } from '../../src/db/db-config';
import { inspectSchema, migrateAll, migrateOwner, readMigrations } from '../../src/db/migrate';
import { schemaOwner } from '../../src/db/schema-owners';
import type { DbHarness } from '../support/db-harness';
import { openDb } from '../support/db-harness';
import { uniqueName } from '../support/stack';

/** The five owners' migration folders as commit 1b4096a had them (`src/db/migrations/<owner>/`), copied verbatim. */
const OLD_LAYOUT = path.join(__dirname, '..', 'support', 'fixtures', 'migrations-1b4096a');

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

  /** Migrations written after 1b4096a, by owner: the only ones a schema the old layout migrated still lacks. */
  const ADDED_SINCE_OLD_LAYOUT: Partial<Record<string, string[]>> = { orders: ['004_loyalty_member'] };

  it('finds a schema migrated by the old layout (1b4096a) up to date but for later files: nothing re-runs, nothing fails', async () => {
    const client = new pg.Client({ connectionString: db.cfg.adminUrl, ssl: db.cfg.ssl });
    await client.connect();
    const made: { schema: string; role: string }[] = [];
    try {
      for (const owner of DB_OWNERS) {
        // A schema of its own per owner, so the shared schemas (and other worktrees' migrations) play no part.
        const schema = uniqueName(`mig_old_${owner}`);
        const target = { schema, role: schema, password: randomBytes(12).toString('hex') };
        made.push(target);
        const old = await migrateOwner(client, { ...target, migrationsDir: path.join(OLD_LAYOUT, owner) });
        expect(old.applied.length).toBeGreaterThan(0);
        const { rows: before } = await client.query(`SELECT * FROM ${schema}.schema_migrations ORDER BY version`);

        const { dir, shared } = schemaOwner(owner);
        const now = { ...target, migrationsDir: dir, sharedMigrations: shared };
        // Only files added since 1b4096a run; what the old layout recorded stays exactly as it was.
        const added = ADDED_SINCE_OLD_LAYOUT[owner] ?? [];
        await expect(inspectSchema(client, now)).resolves.toMatchObject({ pending: added, changed: [] });
        await expect(migrateOwner(client, now)).resolves.toEqual({
          applied: added,
          alreadyApplied: old.applied.length,
        });
        const { rows: after } = await client.query(`SELECT * FROM ${schema}.schema_migrations ORDER BY version`);
        expect(after.slice(0, before.length)).toEqual(before);
        expect(after).toHaveLength(before.length + added.length);
      }
    } finally {
      for (const { schema, role } of made) {
        await client.query(`DROP SCHEMA IF EXISTS ${client.escapeIdentifier(schema)} CASCADE`);
        await client.query(`DROP ROLE IF EXISTS ${client.escapeIdentifier(role)}`);
      }
      await client.end();
    }
  });
});
