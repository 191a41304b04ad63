/**
 * The work behind each kind of plan step: `inspect` compares what exists with the declaration and
 * changes nothing; `apply` makes it so, idempotently (a step that already holds reports `unchanged`).
 */
import type { Connection } from '@temporalio/client';
import type { Admin } from 'kafkajs';
import { ConfigResourceTypes } from 'kafkajs';
import type pg from 'pg';

import {
  connectorConfigMatches,
  connectorStatus,
  describeFailures,
  ensureConnector,
  ensurePublication,
  outboxConnectorConfig,
  publicationDrift,
} from '../cdc/outbox-connector';
import { connectTemporal, createKafka, createPgClient, createRegistryClient } from '../config/clients';
import { formatVersion, inspectSchema, migrateSchema, MIGRATION_LOCK } from '../db/migrate';
import { EVENT_CATALOG } from '../events/generated/event-schemas';
import { createTopicsAndWait } from '../kafka/create-topics';
import type { RegistryClient } from '../kafka/registry-client';
import type {
  ConnectorStep,
  LoginRoleStep,
  MigrationsStep,
  PlanStep,
  PostgresSettingStep,
  PublicationStep,
  SearchAttributesStep,
  SubjectStep,
  TopicStep,
} from './plan';
import { formatMegabytes } from './plan';
import type { ProvisionTargets } from './settings';

/** Failure type strings of provisioning (match on these, not on classes). */
export const ProvisionFailure = {
  /** Something exists in a shape provisioning will not change on its own (the message says what to do). */
  Drift: 'ProvisionDrift',
  /** A step could not be applied. */
  StepFailed: 'ProvisionStepFailed',
} as const;

export class ProvisionError extends Error {
  override name = 'ProvisionError';
  constructor(
    readonly type: (typeof ProvisionFailure)[keyof typeof ProvisionFailure],
    message: string,
  ) {
    super(message);
  }
}

/** What `inspect` found: `ok` when nothing needs doing, else what apply would do. */
export interface Inspection {
  ok: boolean;
  detail: string;
}

/** What `apply` did. */
export interface Applied {
  changed: boolean;
  detail: string;
}

export interface ApplyOptions {
  /**
   * Re-register a subject whose versions are out of file order (delete it, then register every file
   * in order). Safe for existing records because schema ids are content-addressed: the same schema
   * text gets its old id back. Off by default: it is an operator's decision.
   */
  reorderSubjects?: boolean;
}

/** Clients of one provisioning run, opened on first use and closed once at the end. */
export class ProvisionClients {
  private pgClient?: Promise<pg.Client>;
  private kafkaAdmin?: Promise<Admin>;
  private temporal?: Promise<Connection>;
  readonly registry: RegistryClient;

  constructor(readonly targets: ProvisionTargets) {
    this.registry = createRegistryClient(targets.registry);
  }

  pg(): Promise<pg.Client> {
    this.pgClient ??= (async () => {
      const c = createPgClient(this.targets.adminUrl, this.targets.postgres, 'kts-provision');
      await c.connect();
      return c;
    })();
    return this.pgClient;
  }

  admin(): Promise<Admin> {
    this.kafkaAdmin ??= (async () => {
      const kafka = createKafka(this.targets.kafka, 'kts-provision');
      const a = kafka.admin();
      await a.connect();
      return a;
    })();
    return this.kafkaAdmin;
  }

  connection(): Promise<Connection> {
    this.temporal ??= connectTemporal(this.targets.temporal);
    return this.temporal;
  }

  async close(): Promise<void> {
    const settle = async <T>(p: Promise<T> | undefined, close: (v: T) => Promise<unknown>) => {
      if (!p) return;
      const v = await p.catch(() => undefined);
      if (v !== undefined) await close(v).catch(() => undefined);
    };
    await settle(this.pgClient, (c) => c.end());
    await settle(this.kafkaAdmin, (a) => a.disconnect());
    await settle(this.temporal, (c) => c.close());
  }
}

// ---------------------------------------------------------------------------------------------
// migrations

async function inspectMigrations(step: MigrationsStep, c: ProvisionClients): Promise<Inspection> {
  const s = await inspectSchema(await c.pg(), step);
  if (s.changed.length) {
    throw new ProvisionError(
      ProvisionFailure.Drift,
      `${step.schema}: applied migration ${s.changed.join(', ')} changed since; add a new migration instead`,
    );
  }
  if (!s.roleExists) return { ok: false, detail: `would create role ${step.role} and apply ${s.pending.join(', ')}` };
  if (s.pending.length) {
    const at = s.applied.length ? formatVersion(Math.max(...s.applied)) : 'nothing';
    return { ok: false, detail: `at ${at}, would apply ${s.pending.join(', ')}` };
  }
  return { ok: true, detail: `at ${formatVersion(s.expected)}` };
}

async function applyMigrations(step: MigrationsStep, c: ProvisionClients): Promise<Applied> {
  const password = c.targets.passwords[step.owner as keyof ProvisionTargets['passwords']];
  const applied = await migrateSchema(c.targets.adminUrl, { ...step, password }, c.targets.postgres.ssl);
  const s = await inspectSchema(await c.pg(), step);
  return applied.length
    ? { changed: true, detail: `applied ${applied.join(', ')}, now at ${formatVersion(s.expected)}` }
    : { changed: false, detail: `at ${formatVersion(s.expected)}` };
}

// ---------------------------------------------------------------------------------------------
// login roles without a schema (the outbox cleaner)

interface LoginRoleState {
  exists: boolean;
  /** Declared grants not held, as SQL fragments: `SELECT ON orders.outbox`, `USAGE ON SCHEMA orders`. */
  missing: string[];
  /** Privileges and memberships held beyond the declaration, as the fragments that revoke them. */
  extra: string[];
  /** Declared tables that do not exist (their schema's migrations must run first). */
  absentTables: string[];
}

async function loginRoleState(step: LoginRoleStep, db: pg.ClientBase): Promise<LoginRoleState> {
  const role = await db.query<{ oid: number }>('SELECT oid FROM pg_roles WHERE rolname = $1', [step.role]);
  const qualified = (schema: string, table: string) => `${db.escapeIdentifier(schema)}.${db.escapeIdentifier(table)}`;
  const absentTables: string[] = [];
  for (const g of step.grants) {
    const t = await db.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [qualified(g.schema, g.table)]);
    if (!t.rows[0]?.t) absentTables.push(`${g.schema}.${g.table}`);
  }
  const wantTables = new Set(
    step.grants.flatMap((g) => g.privileges.map((p) => `${p} ON ${qualified(g.schema, g.table)}`)),
  );
  const wantSchemas = new Set(step.grants.map((g) => `USAGE ON SCHEMA ${db.escapeIdentifier(g.schema)}`));
  const oid = role.rows[0]?.oid;
  if (oid === undefined) {
    return { exists: false, missing: [...wantSchemas, ...wantTables], extra: [], absentTables };
  }
  // Table privileges (ACL entries on tables, views, sequences), schema privileges and memberships held now.
  const tables = await db.query<{ schema: string; name: string; privilege: string; sequence: boolean }>(
    `SELECT n.nspname AS schema, c.relname AS name, a.privilege_type AS privilege, c.relkind = 'S' AS sequence
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL aclexplode(c.relacl) a
      WHERE a.grantee = $1`,
    [oid],
  );
  const schemas = await db.query<{ name: string; privilege: string }>(
    `SELECT n.nspname AS name, a.privilege_type AS privilege
       FROM pg_namespace n, LATERAL aclexplode(n.nspacl) a WHERE a.grantee = $1`,
    [oid],
  );
  const memberships = await db.query<{ name: string }>(
    'SELECT r.rolname AS name FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE m.member = $1',
    [oid],
  );
  const heldTables = new Set(
    tables.rows.map((r) => `${r.privilege} ON ${r.sequence ? 'SEQUENCE ' : ''}${qualified(r.schema, r.name)}`),
  );
  const heldSchemas = new Set(schemas.rows.map((r) => `${r.privilege} ON SCHEMA ${db.escapeIdentifier(r.name)}`));
  return {
    exists: true,
    missing: [...wantSchemas]
      .filter((g) => !heldSchemas.has(g))
      .concat([...wantTables].filter((g) => !heldTables.has(g))),
    extra: [
      ...[...heldTables].filter((g) => !wantTables.has(g)),
      ...[...heldSchemas].filter((g) => !wantSchemas.has(g)),
      ...memberships.rows.map((m) => `MEMBERSHIP ${db.escapeIdentifier(m.name)}`),
    ],
    absentTables,
  };
}

/** What a login role step has to do ('' when nothing), in the future (`would …`) or the past tense. */
function loginRoleWork(s: LoginRoleState, step: LoginRoleStep, tense: 'would' | 'did'): string {
  const [create, revoke, grant] = tense === 'would' ? ['create', 'revoke', 'grant'] : ['created', 'revoked', 'granted'];
  const parts: string[] = [];
  if (!s.exists) parts.push(`${create} role ${step.role}`);
  if (s.extra.length) parts.push(`${revoke} ${s.extra.join(', ')}`);
  if (s.missing.length) parts.push(`${grant} ${s.missing.join(', ')}`);
  return parts.join(', then ');
}

const ONLY_DECLARED = 'exists with only its declared privileges';

async function inspectLoginRole(step: LoginRoleStep, c: ProvisionClients): Promise<Inspection> {
  const s = await loginRoleState(step, await c.pg());
  if (s.absentTables.length) return { ok: false, detail: `would wait for ${s.absentTables.join(', ')} (migrations)` };
  const work = loginRoleWork(s, step, 'would');
  return work ? { ok: false, detail: `would ${work}` } : { ok: true, detail: ONLY_DECLARED };
}

async function applyLoginRole(step: LoginRoleStep, c: ProvisionClients): Promise<Applied> {
  const password = c.targets.passwords[step.owner as keyof ProvisionTargets['passwords']];
  const db = await c.pg();
  await db.query('BEGIN');
  try {
    // The migrations' lock: no migration recreates a granted table while grants are being made.
    await db.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    const s = await loginRoleState(step, db);
    if (s.absentTables.length) {
      throw new ProvisionError(
        ProvisionFailure.StepFailed,
        `${s.absentTables.join(', ')} does not exist: its schema's migrations must be applied first`,
      );
    }
    const r = db.escapeIdentifier(step.role);
    await db.query(
      `${s.exists ? 'ALTER' : 'CREATE'} ROLE ${r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION ` +
        `NOBYPASSRLS PASSWORD ${db.escapeLiteral(password)}`,
    );
    for (const extra of s.extra) {
      await db.query(
        extra.startsWith('MEMBERSHIP ')
          ? `REVOKE ${extra.slice('MEMBERSHIP '.length)} FROM ${r}`
          : `REVOKE ${extra} FROM ${r}`,
      );
    }
    for (const grant of s.missing) await db.query(`GRANT ${grant} TO ${r}`);
    await db.query('COMMIT');
    const work = loginRoleWork(s, step, 'did');
    return work ? { changed: true, detail: work } : { changed: false, detail: ONLY_DECLARED };
  } catch (err) {
    await db.query('ROLLBACK');
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// topics

interface TopicState {
  partitions: number;
  /** Replicas of the least replicated partition. */
  rf: number;
  /** The topic's effective min.insync.replicas (its own, else the broker's default). */
  minIsr: number;
}

const MIN_ISR = 'min.insync.replicas';

async function topicState(step: TopicStep, c: ProvisionClients): Promise<TopicState | null> {
  const admin = await c.admin();
  const existing = new Set(await admin.listTopics());
  if (!existing.has(step.topic)) return null;
  const meta = await admin.fetchTopicMetadata({ topics: [step.topic] });
  const parts = meta.topics[0]?.partitions ?? [];
  const configs = await admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: step.topic, configNames: [MIN_ISR] }],
    includeSynonyms: false,
  });
  const minIsr = configs.resources[0]?.configEntries.find((e) => e.configName === MIN_ISR)?.configValue;
  return {
    partitions: parts.length,
    rf: Math.min(...parts.map((p) => p.replicas.length)),
    minIsr: Number(minIsr ?? 1),
  };
}

/**
 * A topic's partition count is never changed by provisioning (more partitions would move keys), nor
 * its replication (a reassignment is an operator's job): a difference is reported, not applied.
 */
function topicDrift(step: TopicStep, s: TopicState): string | undefined {
  const parts: string[] = [];
  if (s.partitions !== step.partitions) parts.push(`${s.partitions} partitions, declared ${step.partitions}`);
  if (s.rf < step.replicationFactor) parts.push(`replication ${s.rf}, declared ${step.replicationFactor}`);
  if (s.minIsr < step.minInsyncReplicas) parts.push(`min ISR ${s.minIsr}, declared ${step.minInsyncReplicas}`);
  return parts.length ? `exists with ${parts.join(' and ')} (left as it is)` : undefined;
}

async function inspectTopic(step: TopicStep, c: ProvisionClients): Promise<Inspection> {
  const s = await topicState(step, c);
  if (!s) return { ok: false, detail: 'would create' };
  const drift = topicDrift(step, s);
  return { ok: true, detail: drift ?? 'exists' };
}

/** The brokers the cluster has now: a replication factor above it is refused with what to set. */
async function checkReplicationFits(step: TopicStep, c: ProvisionClients): Promise<void> {
  const { brokers } = await (await c.admin()).describeCluster();
  if (step.replicationFactor > brokers.length) {
    throw new ProvisionError(
      ProvisionFailure.StepFailed,
      `replication ${step.replicationFactor} needs ${step.replicationFactor} brokers, the cluster has ${brokers.length}: ` +
        'set KTS_TOPIC_REPLICATION_FACTOR (and KTS_TOPIC_MIN_INSYNC_REPLICAS) to what it supports',
    );
  }
}

async function applyTopic(step: TopicStep, c: ProvisionClients): Promise<Applied> {
  const s = await topicState(step, c);
  if (s) return { changed: false, detail: topicDrift(step, s) ?? 'exists' };
  await checkReplicationFits(step, c);
  const admin = await c.admin();
  // false when another provisioning run created it a moment ago: the same end state.
  const created = await createTopicsAndWait(admin, [
    {
      topic: step.topic,
      numPartitions: step.partitions,
      replicationFactor: step.replicationFactor,
      configEntries: [{ name: MIN_ISR, value: String(step.minInsyncReplicas) }],
    },
  ]);
  return { changed: created, detail: created ? 'created' : 'exists' };
}

// ---------------------------------------------------------------------------------------------
// registry subjects

function schemaOfFile(file: string): object {
  const entry = EVENT_CATALOG.find((e) => e.file === file);
  if (!entry) throw new Error(`no schema file ${file} in this build`);
  return entry.avsc;
}

interface SubjectState {
  compatibility: string | null;
  /** The version each file holds under the subject, or null when it is not registered there. */
  versions: (number | null)[];
}

async function subjectState(step: SubjectStep, c: ProvisionClients): Promise<SubjectState> {
  const compatibility = await c.registry.subjectCompatibility(step.subject);
  const versions: (number | null)[] = [];
  for (const file of step.files)
    versions.push((await c.registry.lookup(step.subject, schemaOfFile(file)))?.version ?? null);
  return { compatibility, versions };
}

/**
 * Files registered out of file order: a later file holding an earlier version than an earlier file,
 * or a file missing while a later one is registered (registering it now would put it after).
 */
export function outOfOrder(step: Pick<SubjectStep, 'files'>, versions: (number | null)[]): string | undefined {
  let laterSeen = false;
  for (let i = versions.length - 1; i >= 0; i--) {
    if (versions[i] === null && laterSeen) return `${step.files[i]} is missing while a later file is registered`;
    if (versions[i] !== null) laterSeen = true;
  }
  const present = versions.filter((v): v is number => v !== null);
  for (let i = 1; i < present.length; i++) {
    if (present[i]! <= present[i - 1]!) return `versions ${present.join(', ')} are not in file order`;
  }
  return undefined;
}

const REORDER_HINT = 'run `npm run provision -- --reorder-subjects` (schema ids are kept)';

async function inspectSubject(step: SubjectStep, c: ProvisionClients): Promise<Inspection> {
  const s = await subjectState(step, c);
  const order = outOfOrder(step, s.versions);
  if (order) return { ok: false, detail: `out of order: ${order}; would re-register (${REORDER_HINT})` };
  const todo: string[] = [];
  if (s.compatibility !== step.compatibility)
    todo.push(`set ${step.compatibility} (now ${s.compatibility ?? 'unset'})`);
  const missing = step.files.filter((_f, i) => s.versions[i] === null);
  if (missing.length) todo.push(`register ${missing.join(', ')}`);
  return todo.length
    ? { ok: false, detail: `would ${todo.join(', then ')}` }
    : { ok: true, detail: `${step.compatibility}, versions ${s.versions.join(', ')}` };
}

async function applySubject(step: SubjectStep, c: ProvisionClients, opts: ApplyOptions): Promise<Applied> {
  let s = await subjectState(step, c);
  const done: string[] = [];
  const order = outOfOrder(step, s.versions);
  if (order) {
    if (!opts.reorderSubjects) {
      throw new ProvisionError(
        ProvisionFailure.Drift,
        `subject ${step.subject} is out of order (${order}): ${REORDER_HINT}`,
      );
    }
    await c.registry.deleteSubject(step.subject);
    done.push('deleted (out of order)');
    s = { compatibility: null, versions: step.files.map(() => null) };
  }
  // BACKWARD first, so even the first version is registered under the rule.
  if (s.compatibility !== step.compatibility) {
    await c.registry.setCompatibility(step.subject, step.compatibility);
    done.push(`set ${step.compatibility}`);
  }
  const versions = [...s.versions];
  for (const [i, file] of step.files.entries()) {
    if (versions[i] !== null) continue;
    await c.registry.register(step.subject, schemaOfFile(file));
    const found = await c.registry.lookup(step.subject, schemaOfFile(file));
    if (!found)
      throw new ProvisionError(ProvisionFailure.StepFailed, `${step.subject}: ${file} not found after registering it`);
    versions[i] = found.version;
    done.push(`registered ${file} as version ${found.version}`);
  }
  const order2 = outOfOrder(step, versions);
  if (order2) throw new ProvisionError(ProvisionFailure.StepFailed, `${step.subject}: ${order2} after registering`);
  return done.length
    ? { changed: true, detail: done.join(', ') }
    : { changed: false, detail: `${step.compatibility}, versions ${versions.join(', ')}` };
}

// ---------------------------------------------------------------------------------------------
// Temporal search attributes

/** Temporal's IndexedValueType numbers (temporal.api.enums.v1), by the SDK's SearchAttributeType names. */
export const INDEXED_VALUE_TYPES: Readonly<Record<string, number>> = {
  TEXT: 1,
  KEYWORD: 2,
  INT: 3,
  DOUBLE: 4,
  BOOL: 5,
  DATETIME: 6,
  KEYWORD_LIST: 7,
};
const typeName = (n: number | undefined) =>
  Object.entries(INDEXED_VALUE_TYPES).find(([, v]) => v === n)?.[0] ?? `type ${String(n)}`;

async function searchAttributeState(step: SearchAttributesStep, c: ProvisionClients) {
  const conn = await c.connection();
  const r = await conn.operatorService.listSearchAttributes({ namespace: step.namespace });
  const custom = r.customAttributes ?? {};
  const missing = step.attributes.filter((a) => custom[a.name] === undefined);
  const clashing = step.attributes
    .filter((a) => custom[a.name] !== undefined && typeName(custom[a.name]) !== a.type)
    .map((a) => `${a.name} is ${typeName(custom[a.name])}, declared ${a.type}`);
  if (clashing.length) {
    throw new ProvisionError(
      ProvisionFailure.Drift,
      `namespace ${step.namespace}: ${clashing.join('; ')} (a search attribute's type cannot change: remove it first)`,
    );
  }
  return missing;
}

async function inspectSearchAttributes(step: SearchAttributesStep, c: ProvisionClients): Promise<Inspection> {
  const missing = await searchAttributeState(step, c);
  return missing.length
    ? { ok: false, detail: `would add ${missing.map((a) => a.name).join(', ')}` }
    : { ok: true, detail: 'all registered' };
}

async function applySearchAttributes(step: SearchAttributesStep, c: ProvisionClients): Promise<Applied> {
  const missing = await searchAttributeState(step, c);
  if (!missing.length) return { changed: false, detail: 'all registered' };
  const conn = await c.connection();
  const added = conn.operatorService.addSearchAttributes({
    namespace: step.namespace,
    searchAttributes: Object.fromEntries(
      missing.map((a) => {
        const n = INDEXED_VALUE_TYPES[a.type];
        if (n === undefined) throw new Error(`unknown search attribute type ${a.type} of ${a.name}`);
        return [a.name, n];
      }),
    ),
  });
  try {
    await added;
  } catch (err) {
    // Another provisioning run may have added them a moment ago: the same end state is fine.
    if ((await searchAttributeState(step, c)).length) throw err;
    return { changed: false, detail: 'all registered' };
  }
  return { changed: true, detail: `added ${missing.map((a) => a.name).join(', ')}` };
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL server settings

interface ServerSetting {
  megabytes: number;
  /** pg_settings.source: `default`, `configuration file`, `command line`, … */
  source: string;
}

async function serverSetting(step: PostgresSettingStep, c: ProvisionClients): Promise<ServerSetting> {
  const { rows } = await (
    await c.pg()
  ).query<{ setting: string; unit: string | null; source: string }>(
    'SELECT setting, unit, source FROM pg_settings WHERE name = $1',
    [step.name],
  );
  const row = rows[0];
  if (!row) {
    throw new ProvisionError(
      ProvisionFailure.StepFailed,
      `this PostgreSQL has no ${step.name} (PostgreSQL 13 or newer has): a stalled replication slot would keep WAL without bound`,
    );
  }
  if (row.unit !== 'MB')
    throw new ProvisionError(ProvisionFailure.StepFailed, `${step.name} is in ${row.unit}, not MB`);
  return { megabytes: Number(row.setting), source: row.source };
}

const sized = (mb: number) => (mb < 0 ? 'unlimited' : formatMegabytes(mb));

async function inspectPostgresSetting(step: PostgresSettingStep, c: ProvisionClients): Promise<Inspection> {
  const now = await serverSetting(step, c);
  return now.megabytes === step.megabytes
    ? { ok: true, detail: sized(now.megabytes) }
    : { ok: false, detail: `is ${sized(now.megabytes)}, would set ${sized(step.megabytes)} (ALTER SYSTEM, reload)` };
}

async function applyPostgresSetting(step: PostgresSettingStep, c: ProvisionClients): Promise<Applied> {
  const before = await serverSetting(step, c);
  if (before.megabytes === step.megabytes) return { changed: false, detail: sized(before.megabytes) };
  // A value given on the server's command line outranks postgresql.auto.conf: ALTER SYSTEM would do nothing.
  if (before.source === 'command line') {
    throw new ProvisionError(
      ProvisionFailure.Drift,
      `${step.name} is ${sized(before.megabytes)} from the server's command line, which ALTER SYSTEM cannot override: ` +
        `change it there, or declare it with KTS_PG_MAX_SLOT_WAL_KEEP_SIZE=${formatMegabytes(before.megabytes)}`,
    );
  }
  const client = await c.pg();
  // The value is a number from the plan, never user text: safe to inline (ALTER SYSTEM takes no parameters).
  const literal = step.megabytes < 0 ? '-1' : `${Math.trunc(step.megabytes)}MB`;
  try {
    await client.query(`ALTER SYSTEM SET ${step.name} = '${literal}'`);
  } catch (err) {
    if ((err as { code?: string }).code === '42501') {
      // A managed server (RDS, Cloud SQL, …) takes server settings from its own console or API.
      throw new ProvisionError(
        ProvisionFailure.Drift,
        `${step.name} is ${sized(before.megabytes)}, declared ${sized(step.megabytes)}, and this login may not ALTER SYSTEM: ` +
          `set it in the server's configuration (a managed server's parameter group), or declare the server's value ` +
          `with KTS_PG_MAX_SLOT_WAL_KEEP_SIZE=${formatMegabytes(before.megabytes)}`,
      );
    }
    throw err;
  }
  await client.query('SELECT pg_reload_conf()');
  // The reload reaches this session asynchronously (a signal, handled between statements).
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = await serverSetting(step, c);
    if (now.megabytes === step.megabytes) break;
    if (Date.now() > deadline) {
      throw new ProvisionError(
        ProvisionFailure.StepFailed,
        `${step.name} still ${sized(now.megabytes)} (source: ${now.source}) 10 s after ALTER SYSTEM and a reload`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { changed: true, detail: `set to ${sized(step.megabytes)} (was ${sized(before.megabytes)}); reloaded` };
}

// ---------------------------------------------------------------------------------------------
// publication and connector

async function inspectPublication(step: PublicationStep, c: ProvisionClients): Promise<Inspection> {
  const drift = await publicationDrift(await c.pg(), step.name, step.tables);
  return drift.length ? { ok: false, detail: `would fix: ${drift.join('; ')}` } : { ok: true, detail: 'matches' };
}

async function applyPublication(step: PublicationStep, c: ProvisionClients): Promise<Applied> {
  const before = await publicationDrift(await c.pg(), step.name, step.tables);
  if (!before.length) return { changed: false, detail: 'matches' };
  await ensurePublication(c.targets.adminUrl, step.name, step.tables, c.targets.postgres.ssl);
  return {
    changed: true,
    detail: before.length === 1 && before[0]!.endsWith('does not exist') ? 'created' : 'updated',
  };
}

function connectorConfig(step: ConnectorStep, c: ProvisionClients): Record<string, string> {
  const o = c.targets.connector;
  if (!o || o.name !== step.name) throw new Error(`no connector options for ${step.name}`);
  // Debezium connects to PostgreSQL with the same TLS settings as the app's pools.
  return outboxConnectorConfig(c.targets.adminUrl, o, c.targets.postgres);
}

async function inspectConnector(step: ConnectorStep, c: ProvisionClients): Promise<Inspection> {
  const same = await connectorConfigMatches(c.targets.connectUrl, step.name, connectorConfig(step, c));
  if (same === null) return { ok: false, detail: 'would register' };
  if (!same) return { ok: false, detail: 'would update its configuration' };
  const status = await connectorStatus(c.targets.connectUrl, step.name);
  const failures = status ? describeFailures(status) : [];
  return failures.length
    ? { ok: false, detail: `would restart: ${failures.join('; ')}` }
    : { ok: true, detail: `registered, ${status?.connector.state ?? 'unknown'}` };
}

async function applyConnector(step: ConnectorStep, c: ProvisionClients): Promise<Applied> {
  const r = await ensureConnector(c.targets.connectUrl, step.name, connectorConfig(step, c));
  return { changed: r.action !== 'unchanged', detail: `${r.action}, ${r.status.connector.state}` };
}

// ---------------------------------------------------------------------------------------------

/** Compares one step with what exists; changes nothing. */
export function inspectStep(step: PlanStep, c: ProvisionClients): Promise<Inspection> {
  switch (step.kind) {
    case 'migrations':
      return inspectMigrations(step, c);
    case 'login-role':
      return inspectLoginRole(step, c);
    case 'topic':
      return inspectTopic(step, c);
    case 'subject':
      return inspectSubject(step, c);
    case 'search-attributes':
      return inspectSearchAttributes(step, c);
    case 'postgres-setting':
      return inspectPostgresSetting(step, c);
    case 'publication':
      return inspectPublication(step, c);
    case 'connector':
      return inspectConnector(step, c);
  }
}

/** Makes one step hold; idempotent. */
export function applyStep(step: PlanStep, c: ProvisionClients, opts: ApplyOptions = {}): Promise<Applied> {
  switch (step.kind) {
    case 'migrations':
      return applyMigrations(step, c);
    case 'login-role':
      return applyLoginRole(step, c);
    case 'topic':
      return applyTopic(step, c);
    case 'subject':
      return applySubject(step, c, opts);
    case 'search-attributes':
      return applySearchAttributes(step, c);
    case 'postgres-setting':
      return applyPostgresSetting(step, c);
    case 'publication':
      return applyPublication(step, c);
    case 'connector':
      return applyConnector(step, c);
  }
}
