/**
 * The eventId ledger in PostgreSQL (schema `ingress`, role `kts_ingress`). Temporal's workflow-id
 * rules stop a second saga only while the first one's history is retained; this ledger remembers
 * every handled event and every started order for as long as the table is kept.
 */
import type pg from 'pg';

export const LEDGER_SCHEMA = 'ingress';

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

/** An operator's order to dead-letter one record that keeps breaking the handler. */
export interface HandlerErrorRelease {
  operator: string;
  reason: string;
  requestedAt: Date;
  deadLetteredAt: Date | null;
}

export class IngressLedger {
  constructor(private readonly pool: pg.Pool) {}

  /** Asks the ingress to dead-letter the record at `source` (reason HandlerError). Idempotent per position. */
  async requestRelease(source: EventSource, operator: string, reason: string): Promise<HandlerErrorRelease> {
    await this.pool.query(
      `INSERT INTO ingress.handler_error_releases (source_topic, source_partition, source_offset, operator, reason)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
      [source.topic, source.partition, source.offset, operator, reason],
    );
    const release = await this.release(source);
    if (!release) throw new Error(`the release of ${source.topic}/${source.partition}@${source.offset} vanished`);
    return release;
  }

  /** The release ordered for the record at `source`, if any. */
  async release(source: EventSource): Promise<HandlerErrorRelease | undefined> {
    const { rows } = await this.pool.query<{
      operator: string;
      reason: string;
      requested_at: Date;
      dead_lettered_at: Date | null;
    }>(
      `SELECT operator, reason, requested_at, dead_lettered_at FROM ingress.handler_error_releases
       WHERE source_topic = $1 AND source_partition = $2 AND source_offset = $3`,
      [source.topic, source.partition, source.offset],
    );
    const r = rows[0];
    return r
      ? { operator: r.operator, reason: r.reason, requestedAt: r.requested_at, deadLetteredAt: r.dead_lettered_at }
      : undefined;
  }

  /** Notes that the released record's dead letter is on the broker. */
  async markReleased(source: EventSource): Promise<void> {
    await this.pool.query(
      `UPDATE ingress.handler_error_releases SET dead_lettered_at = COALESCE(dead_lettered_at, now())
       WHERE source_topic = $1 AND source_partition = $2 AND source_offset = $3`,
      [source.topic, source.partition, source.offset],
    );
  }

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
