/**
 * The Debezium outbox connector as code: its configuration, the publication it reads, and an
 * idempotent register-or-update through the Kafka Connect REST API with a clear status report.
 */
import type { ConnectionOptions } from 'node:tls';

import pg from 'pg';

import { TOPICS } from '../events/topics';
import { OUTBOX_HEADERS, OUTBOX_TABLE, OUTBOX_TABLES, prefixedTopic } from '../outbox/outbox-constants';

export const DEBEZIUM_POSTGRES_CONNECTOR = 'io.debezium.connector.postgresql.PostgresConnector';
/** Each connector's heartbeat inserts here; in the publication so the insert reaches Debezium. */
export const HEARTBEAT_SCHEMA = 'kts_cdc';
export const HEARTBEAT_TABLE = `${HEARTBEAT_SCHEMA}.heartbeat`;
/** The production connector's heartbeat topic: empty records nobody needs to read. */
export const HEARTBEAT_TOPIC = '_kts-outbox-heartbeat';

/**
 * Where the connector runs and what it reads: the Connect REST URL, and the PostgreSQL superuser URL
 * (publication, slot; Debezium logs in with it too). From the provision section of the settings.
 */
export interface CdcTarget {
  connectUrl: string;
  adminUrl: string;
  ssl?: false | ConnectionOptions;
  /** How Debezium reaches PostgreSQL over TLS (see {@link DebeziumTls}). */
  tls?: DebeziumTls;
}

/**
 * TLS of Debezium's own PostgreSQL connections: libpq's sslmode and CA file, which its JDBC driver
 * takes by the same names. The CA file must be readable where Kafka Connect runs.
 */
export interface DebeziumTls {
  sslmode?: 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
  sslRootCertFile?: string;
}

/** Connector settings for `tls`; none when TLS is off, so a plaintext connector's config stays as it was. */
function debeziumTlsConfig(tls: DebeziumTls | undefined): Record<string, string> {
  if (!tls?.sslmode || tls.sslmode === 'disable') return {};
  return {
    'database.sslmode': tls.sslmode,
    ...(tls.sslRootCertFile ? { 'database.sslrootcert': tls.sslRootCertFile } : {}),
  };
}

/** Production names; tests and benchmarks pass their own so they never share a slot. */
export const OUTBOX_CONNECTOR_NAME = 'kts-outbox';
export const OUTBOX_SLOT_NAME = 'kts_outbox';
export const OUTBOX_PUBLICATION_NAME = 'kts_outbox';

/** Failure type strings of connector management (match on these, not on classes). */
export const ConnectorFailure = {
  /** Connect's REST API could not be reached or answered 5xx. */
  ConnectUnavailable: 'ConnectUnavailable',
  /** Connect refused the configuration (400/409/422): the message names the offending setting. */
  ConfigRejected: 'ConfigRejected',
  /** The connector or one of its tasks is FAILED; the message carries the first line of the trace. */
  TaskFailed: 'TaskFailed',
  /** Not RUNNING within the wait (e.g. still rebalancing, or the worker is overloaded). */
  NotRunning: 'NotRunning',
} as const;
export type ConnectorFailure = (typeof ConnectorFailure)[keyof typeof ConnectorFailure];

export class ConnectorError extends Error {
  override name = 'ConnectorError';
  constructor(
    readonly type: ConnectorFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface OutboxConnectorOptions {
  name: string;
  slotName: string;
  publicationName: string;
  /**
   * Topics this connector may publish to (anchored regex on the routed topic). Rows routed
   * elsewhere, e.g. a test's prefixed topics seen by the production connector, are dropped, so
   * several connectors can read the same outbox tables without publishing each other's rows.
   */
  topicPattern: string;
  /** Where this connector's heartbeat rows go (see the heartbeat settings below). */
  heartbeatTopic: string;
  /** Tests only: a stopped connector drops its slot so no WAL is retained for it. */
  dropSlotOnStop: boolean;
  tables: readonly string[];
  /** Replication of topics Connect creates for this connector: provisioning's (1 replica when unset). */
  topicReplication?: { replicationFactor: number; minInsyncReplicas: number };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Anchored regex matching exactly the given topics. */
export function topicsPattern(topics: readonly string[]): string {
  return `^(${topics.map(escapeRegex).join('|')})$`;
}

/**
 * Anchored regex matching the domain topics under `<prefix>.` (a test or benchmark scope). Only
 * the known topics: Debezium's own records (e.g. `<topic.prefix>.message`) must never match.
 */
export function prefixPattern(prefix: string, extraTopics: readonly string[] = []): string {
  return topicsPattern([...Object.values(TOPICS), ...extraTopics].map((t) => prefixedTopic(prefix, t)));
}

/** The production connector: the four outbox tables, publishing only to the canonical domain topics. */
export function defaultOutboxConnectorOptions(extraTopics: readonly string[] = []): OutboxConnectorOptions {
  return {
    name: OUTBOX_CONNECTOR_NAME,
    slotName: OUTBOX_SLOT_NAME,
    publicationName: OUTBOX_PUBLICATION_NAME,
    topicPattern: topicsPattern([...Object.values(TOPICS), ...extraTopics]),
    heartbeatTopic: HEARTBEAT_TOPIC,
    dropSlotOnStop: false,
    tables: OUTBOX_TABLES,
  };
}

const sqlLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** Inserts this connector's heartbeat row and deletes its rows older than a minute (long published). */
function heartbeatQuery(o: OutboxConnectorOptions): string {
  const topic = sqlLiteral(o.heartbeatTopic);
  return (
    `WITH old AS (DELETE FROM ${HEARTBEAT_TABLE} WHERE topic = ${topic} AND created_at < now() - interval '1 minute') ` +
    `INSERT INTO ${HEARTBEAT_TABLE} (aggregateid, type, topic) VALUES (${sqlLiteral(o.name)}, 'heartbeat', ${topic})`
  );
}

/**
 * The connector's Connect configuration. Pure: the same options give the same map, which is what
 * makes re-registering a no-op.
 */
export function outboxConnectorConfig(
  adminUrl: string,
  o: OutboxConnectorOptions,
  tls?: DebeziumTls,
): Record<string, string> {
  const db = new URL(adminUrl);
  return {
    ...debeziumTlsConfig(tls),
    'connector.class': DEBEZIUM_POSTGRES_CONNECTOR,
    'tasks.max': '1',
    'database.hostname': db.hostname,
    'database.port': db.port || '5432',
    'database.user': decodeURIComponent(db.username),
    'database.password': decodeURIComponent(db.password),
    'database.dbname': decodeURIComponent(db.pathname.replace(/^\//, '')) || 'postgres',
    'topic.prefix': o.name,
    'plugin.name': 'pgoutput',
    'slot.name': o.slotName,
    'slot.drop.on.stop': String(o.dropSlotOnStop),
    // We create the publication ourselves (ensurePublication): outbox tables only, inserts only.
    'publication.name': o.publicationName,
    'publication.autocreate.mode': 'disabled',
    'table.include.list': [...o.tables, HEARTBEAT_TABLE].join(','),
    'column.exclude.list': o.tables.map((t) => `${escapeRegex(t)}\\.tx_id`).join(','),
    // First start (no offsets yet): publish the rows already waiting in the outboxes, so rows written
    // before the slot existed (or after a lost slot) still reach Kafka. Duplicates are deduped by id.
    'snapshot.mode': 'initial',
    // Deletes (the cleaner's) are no events; the publication does not even send them.
    'skipped.operations': 'u,d,t',
    'tombstones.on.delete': 'false',
    // Debezium confirms only positions whose records Connect has produced, and Connect keeps no
    // offset for a record a transform dropped. With idle outboxes (or only other scopes' rows) the
    // slot would then never move: WAL would pile up and the cleaner could never prove a row
    // published. So every second the connector inserts a heartbeat row, shaped like an outbox row
    // and routed the same way to its own heartbeat topic, whose produced record moves the slot on.
    'heartbeat.interval.ms': '1000',
    'heartbeat.action.query': heartbeatQuery(o),
    // Debezium waits this long for a batch to fill (default 500 ms): that wait was most of the
    // commit → Kafka latency (bench/cdc-latency.ts). 50 ms keeps batches while cutting the wait.
    'poll.interval.ms': '50',
    'key.converter': 'org.apache.kafka.connect.storage.StringConverter',
    // The payload column holds Confluent-framed Avro already: pass the bytes through untouched.
    'value.converter': 'org.apache.kafka.connect.converters.ByteArrayConverter',
    'header.converter': 'org.apache.kafka.connect.storage.StringConverter',
    transforms: 'outbox,ours',
    'transforms.outbox.type': 'io.debezium.transforms.outbox.EventRouter',
    // Only outbox change events go through the router; heartbeats and messages go straight to the filter.
    'transforms.outbox.predicate': 'outboxTable',
    'transforms.outbox.table.field.event.id': 'id',
    'transforms.outbox.table.field.event.key': 'aggregateid',
    'transforms.outbox.table.field.event.payload': 'payload',
    'transforms.outbox.route.by.field': 'topic',
    'transforms.outbox.route.topic.replacement': '${routedByValue}',
    'transforms.outbox.table.fields.additional.placement': [
      `type:header:${OUTBOX_HEADERS.eventType}`,
      `traceparent:header:${OUTBOX_HEADERS.traceparent}`,
      `tracestate:header:${OUTBOX_HEADERS.tracestate}`,
    ].join(','),
    'transforms.outbox.table.expand.json.payload': 'false',
    'transforms.ours.type': 'org.apache.kafka.connect.transforms.Filter',
    'transforms.ours.predicate': 'ours',
    'transforms.ours.negate': 'true',
    predicates: 'outboxTable,ours',
    'predicates.outboxTable.type': 'org.apache.kafka.connect.transforms.predicates.TopicNameMatches',
    'predicates.outboxTable.pattern': `^${escapeRegex(o.name)}\\.([a-z_]+\\.${OUTBOX_TABLE}|${escapeRegex(HEARTBEAT_TABLE)})$`,
    'predicates.ours.type': 'org.apache.kafka.connect.transforms.predicates.TopicNameMatches',
    'predicates.ours.pattern': `${o.topicPattern}|^${escapeRegex(o.heartbeatTopic)}$`,
    // The broker may not auto-create topics; Connect creates each routed topic on first use, with
    // provisioning's replication (a single-replica config stays as it was, so re-registering is a no-op).
    'topic.creation.default.replication.factor': String(o.topicReplication?.replicationFactor ?? 1),
    ...((o.topicReplication?.minInsyncReplicas ?? 1) > 1 && {
      'topic.creation.default.min.insync.replicas': String(o.topicReplication?.minInsyncReplicas),
    }),
    'topic.creation.default.partitions': '3',
    // The producer must not reorder or drop on retry: per-key order is what the consumers rely on.
    'producer.override.enable.idempotence': 'true',
    'producer.override.acks': 'all',
    'producer.override.linger.ms': '5',
  };
}

/** `schema.table` → quoted identifier pair; refuses anything else. */
function qualified(client: pg.ClientBase, t: string): string {
  const [schema, table] = t.split('.');
  if (!schema || !table) throw new Error(`table must be schema.table: ${t}`);
  return `${client.escapeIdentifier(schema)}.${client.escapeIdentifier(table)}`;
}

/**
 * Creates the publication of the outbox tables and the heartbeat table (inserts only: the cleaner's
 * deletes never even reach Debezium), or resets its table list. Idempotent. The tables come from
 * the migrations (the heartbeat's is `src/cdc/migrations`); a publication needs a superuser or the
 * owner of every table, hence the admin connection, which only provisioning holds.
 */
export async function ensurePublication(
  adminUrl: string,
  name: string,
  tables: readonly string[],
  ssl: false | ConnectionOptions = false,
): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl, ssl, application_name: 'kts-cdc' });
  await client.connect();
  try {
    const list = [...tables, HEARTBEAT_TABLE].map((t) => qualified(client, t)).join(', ');
    const pub = client.escapeIdentifier(name);
    // Two processes ensuring at once (parallel suites) must not both try CREATE.
    await client.query('BEGIN');
    await client.query("SELECT pg_advisory_xact_lock(hashtext('kts-cdc-publications'))");
    const exists = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [name]);
    if (exists.rowCount) {
      await client.query(`ALTER PUBLICATION ${pub} SET TABLE ${list}`);
      await client.query(`ALTER PUBLICATION ${pub} SET (publish = 'insert')`);
    } else {
      await client.query(`CREATE PUBLICATION ${pub} FOR TABLE ${list} WITH (publish = 'insert')`);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}

/**
 * What a publication lacks compared with the declared tables (outbox tables plus the heartbeat,
 * inserts only), as readable lines; empty when it matches. Read-only.
 */
export async function publicationDrift(
  client: pg.ClientBase,
  name: string,
  tables: readonly string[],
): Promise<string[]> {
  const pub = await client.query<{ pubinsert: boolean; pubupdate: boolean; pubdelete: boolean }>(
    'SELECT pubinsert, pubupdate, pubdelete FROM pg_publication WHERE pubname = $1',
    [name],
  );
  const row = pub.rows[0];
  if (!row) return [`publication ${name} does not exist`];
  const have = await client.query<{ t: string }>(
    "SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1",
    [name],
  );
  const present = new Set(have.rows.map((r) => r.t));
  const wanted = [...tables, HEARTBEAT_TABLE];
  const drift = wanted.filter((t) => !present.has(t)).map((t) => `publication ${name} lacks ${t}`);
  for (const t of present) if (!wanted.includes(t)) drift.push(`publication ${name} also holds ${t}`);
  if (!row.pubinsert || row.pubupdate || row.pubdelete) drift.push(`publication ${name} must publish inserts only`);
  return drift;
}

/** Whether Connect holds exactly this configuration for the connector (null: not registered). */
export async function connectorConfigMatches(
  connectUrl: string,
  name: string,
  config: Record<string, string>,
): Promise<boolean | null> {
  const res = await connectCall(`${connectUrl}/connectors/${encodeURIComponent(name)}/config`);
  if (res.status === 404) return null;
  const { name: _ignored, ...stored } = (await res.json()) as Record<string, string>;
  return (
    Object.keys(config).length === Object.keys(stored).length &&
    Object.entries(config).every(([k, v]) => stored[k] === v)
  );
}

export interface ConnectorStatus {
  name: string;
  connector: { state: string; trace?: string };
  tasks: { id: number; state: string; trace?: string }[];
}

async function connectCall(url: string, init: RequestInit = {}): Promise<Response> {
  // Connect answers 409 while its workers rebalance (e.g. right after another connector changed).
  const deadline = Date.now() + 30_000;
  for (;;) {
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
    } catch (err) {
      throw new ConnectorError(ConnectorFailure.ConnectUnavailable, `${url}: ${(err as Error).message}`);
    }
    if (res.status === 409 && Date.now() < deadline) {
      await res.text();
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    if (res.status >= 500) {
      throw new ConnectorError(ConnectorFailure.ConnectUnavailable, `${url}: ${res.status} ${await res.text()}`);
    }
    return res;
  }
}

/** The connector's status, or null when Connect does not know it. */
export async function connectorStatus(connectUrl: string, name: string): Promise<ConnectorStatus | null> {
  const res = await connectCall(`${connectUrl}/connectors/${encodeURIComponent(name)}/status`);
  if (res.status === 404) return null;
  return (await res.json()) as ConnectorStatus;
}

/** One line per failure in a status, e.g. `task 0 FAILED: org.postgresql.util.PSQLException: …`. */
export function describeFailures(status: ConnectorStatus): string[] {
  const firstLine = (trace?: string) => trace?.split('\n')[0] ?? '(no trace)';
  const out: string[] = [];
  if (status.connector.state === 'FAILED') out.push(`connector FAILED: ${firstLine(status.connector.trace)}`);
  for (const t of status.tasks) if (t.state === 'FAILED') out.push(`task ${t.id} FAILED: ${firstLine(t.trace)}`);
  return out;
}

/**
 * Polls until the connector and all its tasks are RUNNING. A FAILED connector or task throws
 * TaskFailed at once with its trace; still not running after `timeoutMs` throws NotRunning.
 */
export async function waitForConnectorRunning(
  connectUrl: string,
  name: string,
  timeoutMs = 90_000,
): Promise<ConnectorStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: ConnectorStatus | null = null;
  for (;;) {
    try {
      last = await connectorStatus(connectUrl, name);
    } catch (err) {
      // A worker that is (re)starting answers nothing for a while; keep asking until the deadline.
      if ((err as ConnectorError).type !== ConnectorFailure.ConnectUnavailable || Date.now() > deadline) throw err;
    }
    if (last) {
      const failures = describeFailures(last);
      if (failures.length) throw new ConnectorError(ConnectorFailure.TaskFailed, `${name}: ${failures.join('; ')}`);
      if (
        last.connector.state === 'RUNNING' &&
        last.tasks.length > 0 &&
        last.tasks.every((t) => t.state === 'RUNNING')
      ) {
        return last;
      }
    }
    if (Date.now() > deadline) {
      throw new ConnectorError(
        ConnectorFailure.NotRunning,
        `${name} not running after ${timeoutMs} ms: ${JSON.stringify(last)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface EnsureResult {
  name: string;
  /** 'created', 'updated' (config changed) or 'unchanged'. */
  action: 'created' | 'updated' | 'unchanged';
  status: ConnectorStatus;
}

/**
 * Registers the connector, or updates it when its stored configuration differs, then waits until it
 * runs. Idempotent: calling it again with the same options changes nothing and restarts nothing.
 * A FAILED task after an unchanged config is restarted once (e.g. PostgreSQL was down), and
 * reported as TaskFailed if it fails again.
 */
export async function ensureConnector(
  connectUrl: string,
  name: string,
  config: Record<string, string>,
  timeoutMs = 90_000,
): Promise<EnsureResult> {
  const base = `${connectUrl}/connectors/${encodeURIComponent(name)}`;
  const current = await connectCall(`${base}/config`);
  let action: EnsureResult['action'];
  if (current.status === 404) action = 'created';
  else {
    const stored = (await current.json()) as Record<string, string>;
    const { name: _ignored, ...storedConfig } = stored;
    const same =
      Object.keys(config).length === Object.keys(storedConfig).length &&
      Object.entries(config).every(([k, v]) => storedConfig[k] === v);
    action = same ? 'unchanged' : 'updated';
  }
  if (action !== 'unchanged') {
    const put = await connectCall(`${base}/config`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(config),
    });
    if (!put.ok)
      throw new ConnectorError(ConnectorFailure.ConfigRejected, `${name}: ${put.status} ${await put.text()}`);
  } else {
    const status = await connectorStatus(connectUrl, name);
    if (status && describeFailures(status).length) {
      await connectCall(`${base}/restart?includeTasks=true&onlyFailed=true`, { method: 'POST' });
    }
  }
  return { name, action, status: await waitForConnectorRunning(connectUrl, name, timeoutMs) };
}

/**
 * Everything the outbox needs from CDC, for the stack tool and `npm run cdc -- ensure`: the
 * publication, then the connector registered or updated and running. Idempotent.
 */
export async function ensureOutboxConnector(
  target: CdcTarget,
  options: OutboxConnectorOptions = defaultOutboxConnectorOptions(),
): Promise<EnsureResult> {
  await ensurePublication(target.adminUrl, options.publicationName, options.tables, target.ssl);
  return ensureConnector(target.connectUrl, options.name, outboxConnectorConfig(target.adminUrl, options, target.tls));
}

/**
 * Deletes the connector (if present), and its slot and publication when asked. Idempotent. The slot
 * is dropped only once no connector holds it, after Connect has stopped the task.
 */
export async function removeOutboxConnector(
  target: CdcTarget,
  options: Pick<OutboxConnectorOptions, 'name' | 'slotName' | 'publicationName'>,
  { dropSlot = true, dropPublication = true, connectUrl = target.connectUrl } = {},
): Promise<void> {
  await connectCall(`${connectUrl}/connectors/${encodeURIComponent(options.name)}`, { method: 'DELETE' });
  const client = new pg.Client({ connectionString: target.adminUrl, ssl: target.ssl, application_name: 'kts-cdc' });
  await client.connect();
  try {
    if (dropSlot) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = await client.query<{ active: boolean }>(
          'SELECT active FROM pg_replication_slots WHERE slot_name = $1',
          [options.slotName],
        );
        const slot = r.rows[0];
        if (!slot) break;
        if (!slot.active) {
          await client.query('SELECT pg_drop_replication_slot($1)', [options.slotName]);
          break;
        }
        if (Date.now() > deadline)
          throw new Error(`slot ${options.slotName} still in use 30 s after the connector was deleted`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    await client.query(`DELETE FROM ${HEARTBEAT_TABLE} WHERE aggregateid = $1`, [options.name]).catch(() => undefined);
    if (dropPublication)
      await client.query(`DROP PUBLICATION IF EXISTS ${client.escapeIdentifier(options.publicationName)}`);
  } finally {
    await client.end();
  }
}
