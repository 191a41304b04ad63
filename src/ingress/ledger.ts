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
