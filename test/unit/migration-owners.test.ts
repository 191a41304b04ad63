import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { DB_OWNERS } from '../../src/db/db-config';
import { readMigrations, readMigrationsFrom, readOwnerMigrations } from '../../src/db/migrate';
import { OUTBOX_MIGRATION, SCHEMA_OWNERS, schemaOwner } from '../../src/db/schema-owners';
import { OUTBOX_SERVICE_NAMES } from '../../src/services/registry';

/** The five owners' migration folders as commit 1b4096a had them (`src/db/migrations/<owner>/`), copied verbatim. */
const OLD_LAYOUT = path.join(__dirname, '..', 'support', 'fixtures', 'migrations-1b4096a');

const recorded = (ms: { version: number; name: string; checksum: string }[]) =>
  ms.map(({ version, name, checksum }) => ({ version, name, checksum }));

describe('migration owners', () => {
  it('gives every owner of the old layout the same versions, names and checksums it recorded', async () => {
    expect(readdirSync(OLD_LAYOUT).sort()).toEqual([...DB_OWNERS].sort());
    for (const owner of DB_OWNERS) {
      const before = recorded(await readMigrationsFrom(path.join(OLD_LAYOUT, owner)));
      expect(before.length).toBeGreaterThan(0);
      // Later files may follow (a new column); what was recorded stays exactly as it was.
      expect(recorded(await readMigrations(owner)).slice(0, before.length)).toEqual(before);
    }
  });

  it('writes the outbox table once and applies it to every service with an outbox', async () => {
    const sqlFiles = SCHEMA_OWNERS.flatMap((o) => readdirSync(o.dir).filter((f) => f.endsWith('.sql')));
    expect(sqlFiles.filter((f) => f.includes('outbox'))).toEqual([]);
    expect(readFileSync(OUTBOX_MIGRATION.file, 'utf8')).toMatch(/^CREATE TABLE outbox \(/m);
    for (const o of SCHEMA_OWNERS) {
      const withOutbox = (OUTBOX_SERVICE_NAMES as readonly string[]).includes(o.owner);
      const names = (await readOwnerMigrations({ migrationsDir: o.dir, sharedMigrations: o.shared })).map(
        (m) => m.name,
      );
      expect(names.includes('outbox')).toBe(withOutbox);
    }
  });

  it('follows one convention: each owner a migrations/ folder of NNN_snake_name.sql', () => {
    for (const o of SCHEMA_OWNERS) {
      expect(path.basename(o.dir)).toBe('migrations');
      for (const f of readdirSync(o.dir)) expect(f).toMatch(/^\d{3}_[a-z0-9_]+\.sql$/);
    }
  });

  it('refuses a folder whose own file takes the version of a shared migration', async () => {
    const orders = schemaOwner('orders');
    await expect(
      readOwnerMigrations({
        migrationsDir: path.join(OLD_LAYOUT, 'orders'),
        sharedMigrations: orders.shared,
      }),
    ).rejects.toThrow(/duplicate migration version 2/);
  });
});
