/**
 * The provisioning plan: everything the system needs from its infrastructure, as data. One list of
 * steps, in the order they must be applied, built from settings by a pure function, so `npm run
 * provision -- --dry-run` can print it, `--check` can compare it with what exists, and the apply run
 * and the per-role verifications read the same declarations. No I/O here; steps.ts does the work.
 */

import type { SharedMigration } from '../db/schema-owners';
import { SCHEMA_OWNERS } from '../db/schema-owners';
import { EVENT_CATALOG } from '../events/generated/event-schemas';
import { deadLetterTopic, TOPICS, valueSubject } from '../events/topics';
import { OUTBOX_TABLE, OUTBOX_TABLES, prefixedTopic } from '../outbox/outbox-constants';
import { LOYALTY_DEAD_LETTER_TOPIC } from '../services/loyalty/loyalty-events';
import { OUTBOX_SERVICE_NAMES } from '../services/registry';
import { ORDER_SEARCH_ATTRIBUTES } from '../shared/search-attributes';

/** Partitions of `order.placed` and `order.cancelled` (and their dead letters): orders handled side by side. */
export const ORDER_TOPIC_PARTITIONS = 6;
/** Partitions of every other domain topic (what Connect would otherwise create them with). */
export const DOMAIN_TOPIC_PARTITIONS = 3;

/** A schema, its login role and its migration files (`NNN_name.sql`). Passwords are not part of the plan. */
export interface MigrationsStep {
  kind: 'migrations';
  id: string;
  /** Key of the owner's credentials in the provisioning settings. */
  owner: string;
  schema: string;
  role: string;
  migrationsDir: string;
  /** Migration files shared with other owners (the outbox table), at their version. */
  sharedMigrations: readonly SharedMigration[];
}

/** Table privileges a login role may hold; provisioning grants exactly the declared ones. */
export type TablePrivilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

export interface TableGrant {
  schema: string;
  table: string;
  privileges: readonly TablePrivilege[];
}

/**
 * A login role that owns nothing and holds only the declared table privileges (and USAGE on those
 * tables' schemas): provisioning grants them and revokes anything else it finds on the role.
 */
export interface LoginRoleStep {
  kind: 'login-role';
  id: string;
  /** Key of the role's credentials in the provisioning settings. */
  owner: string;
  role: string;
  grants: readonly TableGrant[];
}

export interface TopicStep {
  kind: 'topic';
  id: string;
  topic: string;
  partitions: number;
  replicationFactor: number;
  /** The topic's min.insync.replicas: replicas that must hold a record before an acks=all write succeeds. */
  minInsyncReplicas: number;
  /** Set on a dead-letter topic: the topic whose poison it holds. */
  deadLetterOf?: string;
}

export interface SubjectStep {
  kind: 'subject';
  id: string;
  subject: string;
  compatibility: 'BACKWARD';
  /** Schema files (see EVENT_CATALOG) in the order their versions must be registered: file order. */
  files: string[];
}

export interface SearchAttributesStep {
  kind: 'search-attributes';
  id: string;
  namespace: string;
  attributes: { name: string; type: string }[];
}

export interface PublicationStep {
  kind: 'publication';
  id: string;
  name: string;
  tables: string[];
}

/**
 * A server setting provisioning keeps (ALTER SYSTEM, then a reload). Only `max_slot_wal_keep_size`
 * so far: without it a slot whose connector is gone keeps WAL until the disk is full and takes the
 * whole server down; with it PostgreSQL invalidates that one slot instead (Debezium must then
 * snapshot again) and every other write goes on.
 */
export interface PostgresSettingStep {
  kind: 'postgres-setting';
  id: string;
  name: 'max_slot_wal_keep_size';
  /** In megabytes, the setting's own unit; -1 means unlimited (PostgreSQL's default). */
  megabytes: number;
}

export interface ConnectorStep {
  kind: 'connector';
  id: string;
  name: string;
}

export type PlanStep =
  | MigrationsStep
  | LoginRoleStep
  | TopicStep
  | SubjectStep
  | SearchAttributesStep
  | PostgresSettingStep
  | PublicationStep
  | ConnectorStep;

/** What the plan is built from; `settings.ts` derives it from the environment. */
export interface PlanSettings {
  /** Prefix of every topic and subject (`<prefix>.order.placed`); empty in production. */
  topicPrefix: string;
  /** Replicas of every topic: what the cluster supports (3 on a three-node cluster, 1 on the dev stack's one). */
  replicationFactor: number;
  /** min.insync.replicas of every topic (2 with 3 replicas, so one node may fail without refusing writes). */
  minInsyncReplicas: number;
  orderPartitions: number;
  domainPartitions: number;
  temporalNamespace: string;
  /** The outbox connector of this scope, or null to leave CDC out (a scope without Debezium). */
  cdc: { connectorName: string; publicationName: string; heartbeatTopic: string } | null;
  /**
   * PostgreSQL's max_slot_wal_keep_size in megabytes (-1: unlimited), declared with CDC because
   * only replication slots need it. Default {@link DEFAULT_MAX_SLOT_WAL_KEEP_SIZE_MB}.
   */
  maxSlotWalKeepSizeMb?: number;
  /** Which steps to include: all by default; tests of a scope may take only topics and subjects. */
  include?: readonly PlanStep['kind'][];
  /** Only these canonical topics (and their dead letters and subjects): all by default. */
  topics?: readonly string[];
}

/**
 * 4 GB: a stopped connector on the dev stack's write rates takes hours to reach it, the dev stack's
 * disk holds it easily, and the ReplicationSlotRetainedWal alert (2 GiB) fires half-way there.
 */
export const DEFAULT_MAX_SLOT_WAL_KEEP_SIZE_MB = 4096;

/** A size in megabytes as PostgreSQL writes it: `4GB`, `1536MB`, `-1` (unlimited). */
export function formatMegabytes(mb: number): string {
  if (mb < 0) return '-1';
  if (mb % (1024 * 1024) === 0) return `${mb / (1024 * 1024)}TB`;
  if (mb % 1024 === 0) return `${mb / 1024}GB`;
  return `${mb}MB`;
}

/** The schema owners whose migrations provisioning applies, in order: the one list, `src/db/schema-owners.ts`. */
export const MIGRATION_OWNERS = SCHEMA_OWNERS;
export type MigrationOwner = (typeof MIGRATION_OWNERS)[number]['owner'];

/**
 * Login roles that own no schema. The outbox cleaner deletes published outbox rows of every
 * service, so rather than holding the four services' credentials it has a role of its own that may
 * read and delete outbox rows and nothing else: it can never see an order, a payment or a ledger.
 */
export const LOGIN_ROLES = [
  {
    owner: 'outbox_cleaner',
    role: 'kts_outbox_cleaner',
    grants: OUTBOX_SERVICE_NAMES.map((schema): TableGrant => ({
      schema,
      table: OUTBOX_TABLE,
      privileges: ['SELECT', 'DELETE'],
    })),
  },
] as const;
export type LoginRoleOwner = (typeof LOGIN_ROLES)[number]['owner'];
/** Every role provisioning creates and so needs the password of. */
export type CredentialOwner = MigrationOwner | LoginRoleOwner;

/** Topics that carry events, in a fixed order, with the schema files of each (file order). */
export function eventTopics(): { topic: string; files: string[] }[] {
  return Object.values(TOPICS).map((topic) => ({
    topic,
    files: EVENT_CATALOG.filter((e) => e.eventType === topic).map((e) => e.file),
  }));
}

const ORDER_INPUT_TOPICS: readonly string[] = [TOPICS.orderPlaced, TOPICS.orderCancelled];

/**
 * Builds the plan. Pure: the same settings give the same list, which is what lets `--check` and a
 * second run find nothing to do.
 */
export function buildPlan(s: PlanSettings): PlanStep[] {
  const steps: PlanStep[] = [];
  const wanted = (kind: PlanStep['kind']) => !s.include || s.include.includes(kind);
  const eventTopicsWanted = eventTopics().filter((t) => !s.topics || s.topics.includes(t.topic));
  if (wanted('migrations')) {
    for (const o of MIGRATION_OWNERS) {
      if (o.owner === 'cdc' && !s.cdc) continue;
      steps.push({
        kind: 'migrations',
        id: `migrations:${o.schema}`,
        owner: o.owner,
        schema: o.schema,
        role: o.role,
        migrationsDir: o.dir,
        sharedMigrations: o.shared,
      });
    }
  }
  // After the migrations: the tables it is granted must exist.
  if (wanted('login-role')) {
    for (const r of LOGIN_ROLES) {
      steps.push({ kind: 'login-role', id: `login-role:${r.role}`, owner: r.owner, role: r.role, grants: r.grants });
    }
  }
  if (wanted('topic')) {
    for (const { topic } of eventTopicsWanted) {
      const name = prefixedTopic(s.topicPrefix, topic);
      const partitions = ORDER_INPUT_TOPICS.includes(topic) ? s.orderPartitions : s.domainPartitions;
      steps.push({
        kind: 'topic',
        id: `topic:${name}`,
        topic: name,
        partitions,
        replicationFactor: s.replicationFactor,
        minInsyncReplicas: s.minInsyncReplicas,
      });
      if (ORDER_INPUT_TOPICS.includes(topic)) {
        const dlq = deadLetterTopic(name);
        // As many partitions as the source, so a dead letter can keep its record's partition.
        steps.push({
          kind: 'topic',
          id: `topic:${dlq}`,
          topic: dlq,
          partitions,
          replicationFactor: s.replicationFactor,
          minInsyncReplicas: s.minInsyncReplicas,
          deadLetterOf: name,
        });
      }
    }
    // The loyalty consumer's own dead letters (poison from any topic it consumes), with the partitions
    // of the domain topics it reads so a dead letter can keep its record's partition.
    if (!s.topics || s.topics.includes(LOYALTY_DEAD_LETTER_TOPIC)) {
      const dlq = prefixedTopic(s.topicPrefix, LOYALTY_DEAD_LETTER_TOPIC);
      steps.push({
        kind: 'topic',
        id: `topic:${dlq}`,
        topic: dlq,
        partitions: s.domainPartitions,
        replicationFactor: s.replicationFactor,
        minInsyncReplicas: s.minInsyncReplicas,
        deadLetterOf: 'the loyalty consumer',
      });
    }
    if (s.cdc) {
      const t = s.cdc.heartbeatTopic;
      // As many partitions as Connect gives the topics it creates itself.
      steps.push({
        kind: 'topic',
        id: `topic:${t}`,
        topic: t,
        partitions: s.domainPartitions,
        replicationFactor: s.replicationFactor,
        minInsyncReplicas: s.minInsyncReplicas,
      });
    }
  }
  if (wanted('subject')) {
    for (const { topic, files } of eventTopicsWanted) {
      if (files.length === 0) continue;
      const subject = valueSubject(prefixedTopic(s.topicPrefix, topic));
      steps.push({ kind: 'subject', id: `subject:${subject}`, subject, compatibility: 'BACKWARD', files });
    }
    // Outbox writers frame events with the canonical subject's ids (a scope shares the production
    // schemas), and the roles verify those subjects: a scoped deployment on a fresh registry needs them too.
    if (s.topicPrefix) {
      for (const { topic, files } of eventTopicsWanted) {
        if (files.length === 0) continue;
        const subject = valueSubject(topic);
        steps.push({ kind: 'subject', id: `subject:${subject}`, subject, compatibility: 'BACKWARD', files });
      }
    }
  }
  if (wanted('search-attributes')) {
    steps.push({
      kind: 'search-attributes',
      id: `search-attributes:${s.temporalNamespace}`,
      namespace: s.temporalNamespace,
      attributes: ORDER_SEARCH_ATTRIBUTES.map((k) => ({ name: k.name, type: k.type })),
    });
  }
  // Before the publication and the connector: the limit holds from the moment a slot exists.
  if (s.cdc && wanted('postgres-setting')) {
    steps.push({
      kind: 'postgres-setting',
      id: 'postgres-setting:max_slot_wal_keep_size',
      name: 'max_slot_wal_keep_size',
      megabytes: s.maxSlotWalKeepSizeMb ?? DEFAULT_MAX_SLOT_WAL_KEEP_SIZE_MB,
    });
  }
  if (s.cdc && wanted('publication')) {
    steps.push({
      kind: 'publication',
      id: `publication:${s.cdc.publicationName}`,
      name: s.cdc.publicationName,
      tables: [...OUTBOX_TABLES],
    });
  }
  if (s.cdc && wanted('connector')) {
    steps.push({ kind: 'connector', id: `connector:${s.cdc.connectorName}`, name: s.cdc.connectorName });
  }
  return steps;
}

/** One line naming what a step declares, for progress and `--dry-run`. Never shows a secret. */
export function describeStep(step: PlanStep): string {
  switch (step.kind) {
    case 'migrations':
      return `migrations of schema ${step.schema} (role ${step.role})`;
    case 'login-role':
      return `login role ${step.role} (${step.grants.map((g) => `${g.privileges.join('+')} on ${g.schema}.${g.table}`).join(', ')}; nothing else)`;
    case 'topic':
      return (
        `topic ${step.topic} (${step.partitions} partition${step.partitions === 1 ? '' : 's'}, ` +
        `replication ${step.replicationFactor}, min ISR ${step.minInsyncReplicas}${step.deadLetterOf ? `, dead letters of ${step.deadLetterOf}` : ''})`
      );
    case 'subject':
      return `subject ${step.subject} (${step.compatibility}; ${step.files.join(', ')})`;
    case 'search-attributes':
      return `search attributes in namespace ${step.namespace} (${step.attributes.map((a) => `${a.name}:${a.type}`).join(', ')})`;
    case 'postgres-setting':
      return `PostgreSQL ${step.name} = ${formatMegabytes(step.megabytes)}${step.megabytes < 0 ? ' (unlimited)' : ''}`;
    case 'publication':
      return `publication ${step.name} (${step.tables.join(', ')} + heartbeat, inserts only)`;
    case 'connector':
      return `Debezium outbox connector ${step.name}`;
  }
}
