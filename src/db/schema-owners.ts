/**
 * Every owner of a PostgreSQL schema, with where its migrations live: the one list the migration
 * runner, provisioning and its checks read. One convention for all of them: an owner's
 * `migrations/NNN_snake_name.sql` sit next to its code. The outbox table, identical in every
 * service that keeps one, is written once (`src/outbox/outbox-table.sql`) and applied to each.
 */
import path from 'node:path';

import { CHOREOGRAPHED_SERVICES, SERVICE_REGISTRY } from '../services/registry';

/** A migration file shared by several owners, applied to each at the version given here. */
export interface SharedMigration {
  version: number;
  /** As a folder's file would name it (`NNN_<name>.sql`): recorded in `schema_migrations`. */
  name: string;
  file: string;
}

/**
 * The outbox table of every service with an outbox. Version 2, name `outbox`, byte for byte the
 * SQL of the four `002_outbox.sql` copies it replaces, so a database migrated before records the
 * same version, name and checksum and the shared file is a no-op there.
 */
export const OUTBOX_MIGRATION: SharedMigration = {
  version: 2,
  name: 'outbox',
  file: path.join(__dirname, '..', 'outbox', 'outbox-table.sql'),
};

const SRC = path.join(__dirname, '..');

/** The schema owners whose migrations provisioning applies, in order (the CDC table last: the publication needs it). */
export const SCHEMA_OWNERS = [
  // Every domain service of the registry, its migrations next to its code.
  ...SERVICE_REGISTRY.map((s) => ({
    owner: s.schema,
    schema: s.schema,
    role: s.role,
    dir: path.join(SRC, s.migrations),
    shared: s.hasOutbox ? [OUTBOX_MIGRATION] : [],
  })),
  // The simulated card gateway's own ledger (an outside party, apart from the payments service's data).
  {
    owner: 'card_gateway',
    schema: 'card_gateway',
    role: 'kts_card_gateway',
    dir: path.join(SRC, 'simulated-external', 'migrations'),
    shared: [],
  },
  // The choreographed services (the loyalty service): likewise from the registry, each with an outbox.
  ...CHOREOGRAPHED_SERVICES.map((s) => ({
    owner: s.schema,
    schema: s.schema,
    role: s.role,
    dir: path.join(SRC, s.migrations),
    shared: [OUTBOX_MIGRATION],
  })),
  {
    owner: 'ingress',
    schema: 'ingress',
    role: 'kts_ingress',
    dir: path.join(SRC, 'ingress', 'migrations'),
    shared: [],
  },
  {
    owner: 'event_store',
    schema: 'event_store',
    role: 'kts_event_store',
    dir: path.join(SRC, 'event-store', 'migrations'),
    shared: [],
  },
  { owner: 'cdc', schema: 'kts_cdc', role: 'kts_cdc', dir: path.join(SRC, 'cdc', 'migrations'), shared: [] },
] as const satisfies readonly {
  owner: string;
  schema: string;
  role: string;
  dir: string;
  shared: readonly SharedMigration[];
}[];
export type SchemaOwnerName = (typeof SCHEMA_OWNERS)[number]['owner'];

/** The entry of one schema owner. */
export function schemaOwner(owner: SchemaOwnerName): (typeof SCHEMA_OWNERS)[number] {
  const entry = SCHEMA_OWNERS.find((o) => o.owner === owner);
  if (!entry) throw new Error(`unknown schema owner ${owner}`);
  return entry;
}
