/**
 * What each long-running role needs from provisioning, and the check it runs at start-up. A role
 * never migrates, creates or registers anything: it verifies with its own credentials and fails
 * fast with one line that says what to run, e.g.
 *   orders schema at 003, expected 004: run `npm run provision`
 */
import type { ConnectionOptions } from 'node:tls';

import { connectTemporal, createKafka, createPgClient, createRegistryClient } from '../config/clients';
import type { KafkaSettings, RegistrySettings, TemporalSettings } from '../config/settings';
import { formatVersion, readOwnerMigrations } from '../db/migrate';
import { EVENT_CATALOG } from '../events/generated/event-schemas';
import { deadLetterTopic, TOPICS, valueSubject } from '../events/topics';
import { prefixedTopic } from '../outbox/outbox-constants';
import type { ChoreographedServiceName, ServiceName, Topic } from '../services/registry';
import { CHOREOGRAPHED_SERVICES, SERVICE_REGISTRY, serviceEntry } from '../services/registry';
import { ORDER_SEARCH_ATTRIBUTES } from '../shared/search-attributes';
import type { MigrationOwner, TableGrant } from './plan';
import { LOGIN_ROLES, MIGRATION_OWNERS } from './plan';

/** The long-running roles that verify before they start. */
export type VerifiedRole =
  'saga' | ServiceName | ChoreographedServiceName | 'ingress' | 'api' | 'eventStore' | 'outboxCleaner';

/** Declared needs of a role: schemas it logs into, topics it reads, subjects whose schemas it writes with. */
export interface RoleNeeds {
  schemas: MigrationOwner[];
  /** Canonical names of the topics it consumes (their dead-letter topics too, for the ingress). */
  consumes: Topic[];
  deadLetters: boolean;
  /** Canonical topics whose subjects must hold every schema file of their event type. */
  writes: Topic[];
  searchAttributes: boolean;
  /** Table privileges of a login role without a schema of its own (checked as that role). */
  tables: readonly TableGrant[];
}

const none: RoleNeeds = {
  schemas: [],
  consumes: [],
  deadLetters: false,
  writes: [],
  searchAttributes: false,
  tables: [],
};
const outboxCleanerRole = LOGIN_ROLES.find((r) => r.owner === 'outbox_cleaner')!;

/** The needs of every role, as data (what `settings`'s start function checks before starting one). */
export const ROLE_NEEDS: Readonly<Record<VerifiedRole, RoleNeeds>> = {
  // The orchestrator keeps the order's search attributes current.
  saga: { ...none, searchAttributes: true },
  // Each service's worker: its own schema and the topics its activities emit, as the registry says.
  ...(Object.fromEntries(
    SERVICE_REGISTRY.map((s) => [s.settingsKey, { ...none, schemas: [s.schema], writes: [...s.topics] }]),
  ) as Record<ServiceName, RoleNeeds>),
  // The simulated card gateway is the payments worker's outside party and keeps its own ledger.
  payments: {
    ...none,
    schemas: ['payments', 'card_gateway'],
    writes: [...serviceEntry('payments').topics],
  },
  ingress: { ...none, schemas: ['ingress'], consumes: [TOPICS.orderPlaced, TOPICS.orderCancelled], deadLetters: true },
  api: { ...none, schemas: ['orders'], writes: [TOPICS.orderPlaced, TOPICS.orderCancelled] },
  eventStore: { ...none, schemas: ['event_store'], consumes: Object.values(TOPICS) },
  // Choreographed services: the order events they react to (the saga never calls them) and what
  // they publish through their outbox. Their dead-letter topic is passed with the topics they consume.
  ...(Object.fromEntries(
    CHOREOGRAPHED_SERVICES.map((s) => [
      s.settingsKey,
      { ...none, schemas: [s.schema], consumes: [...s.consumes], writes: [...s.topics] },
    ]),
  ) as Record<ChoreographedServiceName, RoleNeeds>),
  // Its own role: SELECT and DELETE on each service's outbox, no service's credentials.
  outboxCleaner: { ...none, tables: outboxCleanerRole.grants },
};

/** A prerequisite is missing: the message is the one line to show, naming what to run. */
export class NotProvisionedError extends Error {
  override name = 'NotProvisionedError';
  readonly type = 'NotProvisioned';
}

const RUN = 'run `npm run provision`';

/** Where and as whom a role checks. Only the role's own PostgreSQL URLs, never the admin's. */
export interface VerifyTargets {
  /** Login URL of each schema the role needs, as that schema's own role. */
  schemaUrls: Partial<Record<MigrationOwner, string>>;
  /** The role's own login URL, for roles that hold table privileges rather than a schema (the outbox cleaner). */
  loginUrl?: string;
  /** The topics the role consumes, as it names them (scoped names included), when it consumes any. */
  topics?: readonly string[];
  /** Prefix of the role's topics (empty in production); used for the topics it consumes when `topics` is unset. */
  topicPrefix?: string;
  /** The role's own clients' settings (addresses, TLS, credentials), from the settings model. */
  kafka?: KafkaSettings;
  registry?: RegistrySettings;
  temporal?: TemporalSettings;
  /** pg's `ssl` option of the role's pools. */
  pgSsl?: false | ConnectionOptions;
}

/** Checks that one schema is migrated to this build's newest file, logged in as its own role. */
export async function verifySchema(
  owner: MigrationOwner,
  url: string,
  ssl: false | ConnectionOptions = false,
): Promise<void> {
  const o = MIGRATION_OWNERS.find((m) => m.owner === owner);
  if (!o) throw new Error(`unknown schema owner ${owner}`);
  const files = await readOwnerMigrations({ migrationsDir: o.dir, sharedMigrations: o.shared });
  const expected = files.at(-1)?.version ?? 0;
  const client = createPgClient(url, { ssl, poolSize: 1 }, `kts-verify-${owner}`);
  try {
    await client.connect();
  } catch (err) {
    const code = (err as { code?: string }).code;
    // 28P01 wrong password, 28000 no such role: provisioning creates the role with its password.
    if (code === '28P01' || code === '28000') {
      throw new NotProvisionedError(`${o.schema} role ${o.role} cannot log in: ${RUN}`);
    }
    throw err;
  }
  try {
    const r = await client.query<{ v: number | null }>(
      `SELECT max(version) AS v FROM ${client.escapeIdentifier(o.schema)}.schema_migrations`,
    );
    const at = r.rows[0]?.v ?? 0;
    if (at < expected) {
      throw new NotProvisionedError(
        `${o.schema} schema at ${at ? formatVersion(at) : 'nothing'}, expected ${formatVersion(expected)}: ${RUN}`,
      );
    }
  } catch (err) {
    const code = (err as { code?: string }).code;
    // 42P01 no table, 3F000 no schema, 42501 not the role's schema: nothing provisioned for this role.
    if (code === '42P01' || code === '3F000' || code === '42501') {
      throw new NotProvisionedError(`${o.schema} schema is not migrated, expected ${formatVersion(expected)}: ${RUN}`);
    }
    throw err;
  } finally {
    await client.end();
  }
}

/**
 * Checks, logged in as the role itself, that it holds every declared table privilege. A role
 * without them was not provisioned (or a table was recreated since): provisioning grants them.
 */
export async function verifyTablePrivileges(
  url: string,
  grants: readonly TableGrant[],
  ssl: false | ConnectionOptions = false,
): Promise<void> {
  const client = createPgClient(url, { ssl, poolSize: 1 }, 'kts-verify-grants');
  try {
    await client.connect();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '28P01' || code === '28000') {
      const user = new URL(url).username;
      throw new NotProvisionedError(`role ${decodeURIComponent(user)} cannot log in: ${RUN}`);
    }
    throw err;
  }
  const who = decodeURIComponent(new URL(url).username);
  try {
    for (const g of grants) {
      const table = `${g.schema}.${g.table}`;
      // Schema USAGE first: without it the table cannot even be looked up.
      const r = await client.query<{ usage: boolean; found: boolean }>(
        `SELECT has_schema_privilege(current_user, n.oid, 'USAGE') AS usage,
                has_schema_privilege(current_user, n.oid, 'USAGE')
                  AND to_regclass(format('%I.%I', n.nspname, $2::text)) IS NOT NULL AS found
           FROM pg_namespace n WHERE n.nspname = $1`,
        [g.schema, g.table],
      );
      const row = r.rows[0];
      if (!row?.usage || !row.found) {
        throw new NotProvisionedError(
          `${who} cannot reach ${table} (${row ? 'no USAGE or no table' : 'no schema'}): ${RUN}`,
        );
      }
      const lacking = await client.query<{ p: string }>(
        `SELECT p FROM unnest($2::text[]) AS p
          WHERE NOT has_table_privilege(current_user, to_regclass($1), p)`,
        [`${client.escapeIdentifier(g.schema)}.${client.escapeIdentifier(g.table)}`, g.privileges],
      );
      if (lacking.rows.length) {
        throw new NotProvisionedError(`${who} lacks ${lacking.rows.map((x) => x.p).join(', ')} on ${table}: ${RUN}`);
      }
    }
  } finally {
    await client.end();
  }
}

/** Checks that every topic exists. */
export async function verifyTopics(kafka: KafkaSettings, topics: readonly string[]): Promise<void> {
  const admin = createKafka(kafka, 'kts-verify').admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length) {
      const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : '';
      throw new NotProvisionedError(`topic ${missing[0]} is missing${more}: ${RUN}`);
    }
  } finally {
    await admin.disconnect();
  }
}

/** Checks that each topic's subject holds every schema file of its event type (looked up, never registered). */
export async function verifySubjects(registrySettings: RegistrySettings, topics: readonly Topic[]): Promise<void> {
  const registry = createRegistryClient(registrySettings);
  for (const topic of topics) {
    const subject = valueSubject(topic);
    for (const entry of EVENT_CATALOG.filter((e) => e.eventType === topic)) {
      if (!(await registry.lookup(subject, entry.avsc))) {
        throw new NotProvisionedError(`subject ${subject} lacks ${entry.file}: ${RUN}`);
      }
    }
  }
}

/** Checks that the order saga's search attributes are registered in the namespace. */
export async function verifySearchAttributes(temporal: TemporalSettings): Promise<void> {
  const namespace = temporal.namespace;
  const connection = await connectTemporal(temporal);
  try {
    const r = await connection.operatorService.listSearchAttributes({ namespace });
    const custom = r.customAttributes ?? {};
    const missing = ORDER_SEARCH_ATTRIBUTES.filter((k) => custom[k.name] === undefined);
    if (missing.length) {
      throw new NotProvisionedError(
        `search attribute ${missing.map((k) => k.name).join(', ')} not registered in namespace ${namespace}: ${RUN}`,
      );
    }
  } finally {
    await connection.close();
  }
}

/**
 * Verifies everything the roles need, in a fixed order (schemas, topics, subjects, search
 * attributes), throwing {@link NotProvisionedError} at the first gap. Outbox writers encode under
 * the canonical topic's subject, so subjects are checked unprefixed.
 */
export async function verifyRoles(roles: readonly VerifiedRole[], t: VerifyTargets): Promise<void> {
  const needs = roles.map((r) => ROLE_NEEDS[r]);
  const schemas = [...new Set(needs.flatMap((n) => n.schemas))];
  for (const owner of schemas) {
    const url = t.schemaUrls[owner];
    if (!url) throw new Error(`verify: no login URL for schema ${owner}`);
    await verifySchema(owner, url, t.pgSsl);
  }
  const tables = needs.flatMap((n) => n.tables);
  if (tables.length) {
    if (!t.loginUrl) throw new Error("verify: no login URL of the role's own");
    await verifyTablePrivileges(t.loginUrl, tables, t.pgSsl);
  }
  const consumed = needs.flatMap((n) =>
    n.consumes.flatMap((topic) => {
      const name = prefixedTopic(t.topicPrefix ?? '', topic);
      return n.deadLetters ? [name, deadLetterTopic(name)] : [name];
    }),
  );
  const topics = t.topics ?? consumed;
  if (topics.length) {
    if (!t.kafka) throw new Error('verify: no Kafka settings');
    await verifyTopics(t.kafka, [...new Set(topics)]);
  }
  const writes = [...new Set(needs.flatMap((n) => n.writes))];
  if (writes.length) {
    if (!t.registry) throw new Error('verify: no registry settings');
    await verifySubjects(t.registry, writes);
  }
  if (needs.some((n) => n.searchAttributes)) {
    if (!t.temporal) throw new Error('verify: no Temporal settings');
    await verifySearchAttributes(t.temporal);
  }
}
