import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ConnectionOptions } from 'node:tls';

import pg from 'pg';

import type { DbConfig, DbOwner } from './db-config';
import { DB_OWNERS } from './db-config';
import type { SharedMigration } from './schema-owners';
import { schemaOwner } from './schema-owners';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationReport {
  schema: DbOwner;
  applied: string[];
  alreadyApplied: number;
}

const FILE_PATTERN = /^(\d{3,})_([a-z0-9_]+)\.sql$/;

/** Reads the migration files of one folder in version order; a malformed or duplicate version is an error. */
export async function readMigrationsFrom(folder: string): Promise<Migration[]> {
  const files = (await readdir(folder)).filter((f) => f.endsWith('.sql')).sort();
  const seen = new Set<number>();
  const migrations: Migration[] = [];
  for (const file of files) {
    const m = FILE_PATTERN.exec(file);
    if (!m?.[1] || !m[2]) throw new Error(`migration file name must look like 001_name.sql: ${folder}/${file}`);
    const version = Number(m[1]);
    if (seen.has(version)) throw new Error(`duplicate migration version ${version} in ${folder}/`);
    seen.add(version);
    migrations.push(toMigration(version, m[2], await readFile(path.join(folder, file), 'utf8')));
  }
  return migrations;
}

function toMigration(version: number, name: string, sql: string): Migration {
  return { version, name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
}

/**
 * Reads one owner's migrations: the files of its folder plus the shared ones it applies (the outbox
 * table), in version order; a version both in the folder and shared is an error.
 */
export async function readOwnerMigrations(
  owner: Pick<SchemaOwner, 'migrationsDir' | 'sharedMigrations'>,
): Promise<Migration[]> {
  const migrations = await readMigrationsFrom(owner.migrationsDir);
  for (const shared of owner.sharedMigrations ?? []) {
    if (migrations.some((m) => m.version === shared.version)) {
      throw new Error(
        `duplicate migration version ${shared.version} in ${owner.migrationsDir}/: it is the shared ${shared.file}`,
      );
    }
    migrations.push(toMigration(shared.version, shared.name, await readFile(shared.file, 'utf8')));
  }
  return migrations.sort((a, b) => a.version - b.version);
}

/** Reads the migrations of one owner whose pools the database config holds (a service or the card gateway). */
export function readMigrations(owner: DbOwner): Promise<Migration[]> {
  const { dir, shared } = schemaOwner(owner);
  return readOwnerMigrations({ migrationsDir: dir, sharedMigrations: shared });
}

// One lock for every migrating process (parallel test suites, several workers starting at once).
export const MIGRATION_LOCK = 7_301_907_041;

/** A schema and the login role that owns it, with the folder of its migrations. */
export interface SchemaOwner {
  schema: string;
  role: string;
  password: string;
  /** Folder of `NNN_name.sql` files. */
  migrationsDir: string;
  /** Migrations shared with other owners (the outbox table), at their version. */
  sharedMigrations?: readonly SharedMigration[];
}

/**
 * Brings one schema owner up to date: its role (login, nothing else), its schema (owned by the role,
 * closed to PUBLIC), then each migration not yet recorded, executed as the role so it owns what it
 * creates. Runs in one transaction: a failing migration leaves nothing half-applied. An applied
 * migration whose file changed since is refused rather than silently skipped.
 */
export async function migrateOwner(
  client: pg.Client,
  owner: SchemaOwner,
): Promise<{ applied: string[]; alreadyApplied: number }> {
  const { role, password, schema } = owner;
  const r = client.escapeIdentifier(role);
  const s = client.escapeIdentifier(schema);
  const migrations = await readOwnerMigrations(owner);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
    const verb = exists.rowCount ? 'ALTER' : 'CREATE';
    await client.query(
      `${verb} ROLE ${r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD ${client.escapeLiteral(password)}`,
    );
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s} AUTHORIZATION ${r}`);
    await client.query(`REVOKE ALL ON SCHEMA ${s} FROM PUBLIC`);
    // Objects created before the role existed (or by hand as postgres) would not be the role's.
    await client.query(`ALTER SCHEMA ${s} OWNER TO ${r}`);
    await client.query(`SET LOCAL ROLE ${r}`);
    await client.query(`SET LOCAL search_path TO ${s}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
         version integer PRIMARY KEY,
         name text NOT NULL,
         checksum text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const done = await client.query<{ version: number; name: string; checksum: string }>(
      `SELECT version, name, checksum FROM ${s}.schema_migrations`,
    );
    const recorded = new Map(done.rows.map((row) => [row.version, row]));
    const applied: string[] = [];
    for (const m of migrations) {
      const prior = recorded.get(m.version);
      if (prior) {
        if (prior.checksum !== m.checksum) {
          throw new Error(
            `migration ${schema}/${String(m.version).padStart(3, '0')}_${m.name} changed after it was applied; ` +
              'add a new migration instead of editing an applied one',
          );
        }
        continue;
      }
      await client.query(m.sql);
      await client.query(`INSERT INTO ${s}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, [
        m.version,
        m.name,
        m.checksum,
      ]);
      applied.push(`${String(m.version).padStart(3, '0')}_${m.name}`);
    }
    await client.query('COMMIT');
    return { applied, alreadyApplied: recorded.size };
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
}

/**
 * Migrates one schema owner outside the services' set (the ingress ledger, the event store): the
 * same rules as {@link migrateAll}. Returns the migrations applied now.
 */
export async function migrateSchema(
  adminUrl: string,
  owner: SchemaOwner,
  ssl: false | ConnectionOptions = false,
): Promise<string[]> {
  const client = new pg.Client({ connectionString: adminUrl, ssl, application_name: `kts-migrate-${owner.schema}` });
  await client.connect();
  try {
    return (await migrateOwner(client, owner)).applied;
  } finally {
    await client.end();
  }
}

/**
 * Creates or updates every service's role, schema and tables. Idempotent and safe to call from
 * several processes at once (an advisory lock serialises them), so test suites and workers call it
 * on start and a fresh machine needs no manual step.
 */
export async function migrateAll(cfg: DbConfig): Promise<MigrationReport[]> {
  const client = new pg.Client({ connectionString: cfg.adminUrl, ssl: cfg.ssl, application_name: 'kts-migrate' });
  await client.connect();
  try {
    const reports: MigrationReport[] = [];
    for (const owner of DB_OWNERS) {
      const { role, password, schema } = cfg.owners[owner];
      const { dir: migrationsDir, shared: sharedMigrations } = schemaOwner(owner);
      reports.push({
        schema: owner,
        ...(await migrateOwner(client, { role, password, schema, migrationsDir, sharedMigrations })),
      });
    }
    return reports;
  } finally {
    await client.end();
  }
}

/** `3` → `003`, as migration files and messages name versions. */
export function formatVersion(version: number): string {
  return String(version).padStart(3, '0');
}

/** What a schema holds compared with its migration files; read-only (provisioning's `--check`). */
export interface SchemaState {
  roleExists: boolean;
  /** Versions recorded in `<schema>.schema_migrations` (empty when the table does not exist). */
  applied: number[];
  /** Files not yet applied, as `NNN_name`. */
  pending: string[];
  /** Applied files whose content changed since, as `NNN_name`. */
  changed: string[];
  /** The newest version among the files. */
  expected: number;
}

/** Compares one schema owner with its migration files through an admin connection, changing nothing. */
export async function inspectSchema(
  client: pg.ClientBase,
  owner: Pick<SchemaOwner, 'schema' | 'role' | 'migrationsDir' | 'sharedMigrations'>,
): Promise<SchemaState> {
  const migrations = await readOwnerMigrations(owner);
  const role = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [owner.role]);
  const table = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [
    `${client.escapeIdentifier(owner.schema)}.schema_migrations`,
  ]);
  const recorded = new Map<number, string>();
  if (table.rows[0]?.t) {
    const rows = await client.query<{ version: number; checksum: string }>(
      `SELECT version, checksum FROM ${client.escapeIdentifier(owner.schema)}.schema_migrations`,
    );
    for (const r of rows.rows) recorded.set(r.version, r.checksum);
  }
  const label = (m: Migration) => `${formatVersion(m.version)}_${m.name}`;
  return {
    roleExists: (role.rowCount ?? 0) > 0,
    applied: [...recorded.keys()].sort((a, b) => a - b),
    pending: migrations.filter((m) => !recorded.has(m.version)).map(label),
    changed: migrations.filter((m) => recorded.has(m.version) && recorded.get(m.version) !== m.checksum).map(label),
    expected: migrations.at(-1)?.version ?? 0,
  };
}
