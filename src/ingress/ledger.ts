/**
 * The eventId ledger in PostgreSQL (schema `ingress`, role `kts_ingress`). Temporal's workflow-id
 * rules stop a second saga only while the first one's history is retained; this ledger remembers
 * every handled event and every started order for as long as the table is kept.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import pg from 'pg';

export const LEDGER_SCHEMA = 'ingress';
const MIGRATIONS_DIR = path.join(__dirname, 'migrations');
// Distinct from the services' migration lock: the two tools never touch the same objects.
const LEDGER_MIGRATION_LOCK = 7_301_907_042;

export type LedgerOutcome =
  'STARTED' | 'ALREADY_STARTED' | 'DUPLICATE_ORDER' | 'SIGNALLED' | 'CANCEL_PENDING' | 'CANCEL_TOO_LATE';

export interface EventSource {
  topic: string;
  partition: number;
  offset: string;
}

export interface LedgerEntry {
  eventId: string;
  eventType: string;
  orderId: string;
}

/**
 * Creates the `kts_ingress` role, the `ingress` schema (owned by it, closed to PUBLIC) and applies
 * `src/ingress/migrations/NNN_name.sql` not yet recorded, in one transaction under an advisory lock.
 * Idempotent and safe to run from several consumers at once. A changed applied migration is refused.
 */
export async function migrateLedger(db: { adminUrl: string; role: string; password: string }): Promise<string[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
  const client = new pg.Client({ connectionString: db.adminUrl, application_name: 'kts-ingress-migrate' });
  await client.connect();
  const r = client.escapeIdentifier(db.role);
  const s = client.escapeIdentifier(LEDGER_SCHEMA);
  const applied: string[] = [];
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [LEDGER_MIGRATION_LOCK]);
    const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [db.role]);
    await client.query(
      `${exists.rowCount ? 'ALTER' : 'CREATE'} ROLE ${r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT ` +
        `PASSWORD ${client.escapeLiteral(db.password)}`,
    );
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s} AUTHORIZATION ${r}`);
    await client.query(`REVOKE ALL ON SCHEMA ${s} FROM PUBLIC`);
    await client.query(`SET LOCAL ROLE ${r}`);
    await client.query(`SET LOCAL search_path TO ${s}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
         checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Map(
      (
        await client.query<{ version: number; checksum: string }>('SELECT version, checksum FROM schema_migrations')
      ).rows.map((row) => [row.version, row.checksum]),
    );
    for (const file of files) {
      const version = Number(file.slice(0, 3));
      const sql = await readFile(path.join(MIGRATIONS_DIR, file), 'utf8');
      const checksum = createHash('sha256').update(sql).digest('hex');
      const prior = done.get(version);
      if (prior !== undefined) {
        if (prior !== checksum) throw new Error(`ingress migration ${file} changed after it was applied`);
        continue;
      }
      await client.query(sql);
      await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        version,
        file.replace(/\.sql$/, ''),
        checksum,
      ]);
      applied.push(file);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}

export class IngressLedger {
  constructor(private readonly pool: pg.Pool) {}

  /** Has this event been handled, and has a saga already been started for this order? One round trip. */
  async lookup(eventId: string, orderId: string): Promise<{ eventSeen: boolean; orderStarted: boolean }> {
    const res = await this.pool.query<{ event_seen: boolean; order_started: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM ingress.processed_events WHERE event_id = $1) AS event_seen,
              EXISTS (SELECT 1 FROM ingress.order_sagas WHERE order_id = $2) AS order_started`,
      [eventId, orderId],
    );
    const row = res.rows[0];
    return { eventSeen: row?.event_seen ?? false, orderStarted: row?.order_started ?? false };
  }

  /** Records an event's outcome. Idempotent: a second record of the same eventId changes nothing. */
  async record(entry: LedgerEntry, outcome: LedgerOutcome, source: EventSource): Promise<void> {
    await this.pool.query(
      `INSERT INTO ingress.processed_events
         (event_id, event_type, order_id, outcome, source_topic, source_partition, source_offset)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING`,
      [entry.eventId, entry.eventType, entry.orderId, outcome, source.topic, source.partition, source.offset],
    );
  }

  /** Records a started saga and the event that started it, atomically. Idempotent. */
  async recordStarted(
    entry: LedgerEntry,
    workflowId: string,
    outcome: 'STARTED' | 'ALREADY_STARTED',
    source: EventSource,
  ): Promise<void> {
    await this.pool.query(
      `WITH saga AS (
         INSERT INTO ingress.order_sagas (order_id, workflow_id, first_event_id, source_topic)
         VALUES ($3, $8, $1, $5) ON CONFLICT (order_id) DO NOTHING)
       INSERT INTO ingress.processed_events
         (event_id, event_type, order_id, outcome, source_topic, source_partition, source_offset)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING`,
      [
        entry.eventId,
        entry.eventType,
        entry.orderId,
        outcome,
        source.topic,
        source.partition,
        source.offset,
        workflowId,
      ],
    );
  }

  /** Remembers a cancel whose order has no saga yet, and the event itself, atomically. Idempotent. */
  async recordPendingCancel(entry: LedgerEntry, reason: string, source: EventSource): Promise<void> {
    await this.pool.query(
      `WITH pending AS (
         INSERT INTO ingress.pending_cancels (order_id, event_id, reason)
         VALUES ($3, $1, $8) ON CONFLICT (order_id) DO NOTHING)
       INSERT INTO ingress.processed_events
         (event_id, event_type, order_id, outcome, source_topic, source_partition, source_offset)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING`,
      [
        entry.eventId,
        entry.eventType,
        entry.orderId,
        'CANCEL_PENDING',
        source.topic,
        source.partition,
        source.offset,
        reason,
      ],
    );
  }

  /** The reason of a cancel that arrived before its order, if one did. */
  async pendingCancel(orderId: string): Promise<string | undefined> {
    const res = await this.pool.query<{ reason: string }>(
      'SELECT reason FROM ingress.pending_cancels WHERE order_id = $1',
      [orderId],
    );
    return res.rows[0]?.reason;
  }
}
