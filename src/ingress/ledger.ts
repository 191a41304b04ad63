/**
 * The eventId ledger in PostgreSQL (schema `ingress`, role `kts_ingress`). Temporal's workflow-id
 * rules stop a second saga only while the first one's history is retained; this ledger remembers
 * every handled event and every started order for as long as the table is kept.
 */
import type pg from 'pg';

import { prepared } from '../db/prepared';

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

/** Parameters $1–$7 of a processed_events row, in its column order; statements add theirs from $8. */
function eventRow(entry: LedgerEntry, outcome: LedgerOutcome, source: EventSource): unknown[] {
  return [entry.eventId, entry.eventType, entry.orderId, outcome, source.topic, source.partition, source.offset];
}

export class IngressLedger {
  constructor(private readonly pool: pg.Pool) {}

  /** Asks the ingress to dead-letter the record at `source` (reason HandlerError). Idempotent per position. */
  async requestRelease(source: EventSource, operator: string, reason: string): Promise<HandlerErrorRelease> {
    await this.pool.query(
      prepared(
        `INSERT INTO ingress.handler_error_releases (source_topic, source_partition, source_offset, operator, reason)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
        [source.topic, source.partition, source.offset, operator, reason],
      ),
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
      prepared(
        `SELECT operator, reason, requested_at, dead_lettered_at FROM ingress.handler_error_releases
       WHERE source_topic = $1 AND source_partition = $2 AND source_offset = $3`,
        [source.topic, source.partition, source.offset],
      ),
    );
    const r = rows[0];
    return r
      ? { operator: r.operator, reason: r.reason, requestedAt: r.requested_at, deadLetteredAt: r.dead_lettered_at }
      : undefined;
  }

  /** Notes that the released record's dead letter is on the broker. */
  async markReleased(source: EventSource): Promise<void> {
    await this.pool.query(
      prepared(
        `UPDATE ingress.handler_error_releases SET dead_lettered_at = COALESCE(dead_lettered_at, now())
       WHERE source_topic = $1 AND source_partition = $2 AND source_offset = $3`,
        [source.topic, source.partition, source.offset],
      ),
    );
  }

  /** Has this event been handled, and has a saga already been started for this order? One round trip. */
  async lookup(eventId: string, orderId: string): Promise<{ eventSeen: boolean; orderStarted: boolean }> {
    const res = await this.pool.query<{ event_seen: boolean; order_started: boolean }>(
      prepared(
        `SELECT EXISTS (SELECT 1 FROM ingress.processed_events WHERE event_id = $1) AS event_seen,
              EXISTS (SELECT 1 FROM ingress.order_sagas WHERE order_id = $2) AS order_started`,
        [eventId, orderId],
      ),
    );
    const row = res.rows[0];
    return { eventSeen: row?.event_seen ?? false, orderStarted: row?.order_started ?? false };
  }

  /** Records an event's outcome. Idempotent: a second record of the same eventId changes nothing. */
  async record(entry: LedgerEntry, outcome: LedgerOutcome, source: EventSource): Promise<void> {
    await this.pool.query(
      prepared(
        `INSERT INTO ingress.processed_events
         (event_id, event_type, order_id, outcome, source_topic, source_partition, source_offset)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING`,
        eventRow(entry, outcome, source),
      ),
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
      prepared(
        `WITH saga AS (
         INSERT INTO ingress.order_sagas (order_id, workflow_id, first_event_id, source_topic)
         VALUES ($3, $8, $1, $5) ON CONFLICT (order_id) DO NOTHING)
       INSERT INTO ingress.processed_events
         (event_id, event_type, order_id, outcome, source_topic, source_partition, source_offset)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING`,
        [...eventRow(entry, outcome, source), workflowId],
      ),
    );
  }

  /** Remembers a cancel whose order has no saga yet, and the event itself, atomically. Idempotent. */
  async recordPendingCancel(entry: LedgerEntry, reason: string, source: EventSource): Promise<void> {
    await this.pool.query(
      prepared(
        `WITH pending AS (
         INSERT INTO ingress.pending_cancels (order_id, event_id, reason)
         VALUES ($3, $1, $8) ON CONFLICT (order_id) DO NOTHING)
       INSERT INTO ingress.processed_events
         (event_id, event_type, order_id, outcome, source_topic, source_partition, source_offset)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING`,
        [...eventRow(entry, 'CANCEL_PENDING', source), reason],
      ),
    );
  }

  /**
   * After a saga start: if no cancel is pending for the order, records the started saga and its
   * event (like recordStarted) and returns undefined; if one is pending, writes nothing and returns
   * its reason, so the caller signals the cancel first and then calls recordStarted. One round trip
   * where there used to be two (pending-cancel read, then ledger write).
   *
   * Why this is safe. The read happens after the start returned, as before, and in the same statement
   * (one snapshot) as the write, so "no cancel pending" and "ledger row written" are one atomic fact:
   * - a cancel that commits its pending row after this snapshot signals again after that commit
   *   (handler: signal, pending row, signal again), i.e. after our start: the saga gets it;
   * - a pending row this statement sees makes it write nothing, so a crash before the caller's cancel
   *   signal leaves the event unrecorded: redelivery starts again (ALREADY_STARTED), finds the row
   *   again and signals; the saga's cancel flag is idempotent;
   * - duplicates: both inserts keep ON CONFLICT DO NOTHING, so a second call changes nothing.
   * Reading the pending row in the lookup before the start instead would not be safe: a cancel
   * could write its row and signal (finding no saga) between that read and the start.
   */
  async recordStartedUnlessCancelPending(
    entry: LedgerEntry,
    workflowId: string,
    outcome: 'STARTED' | 'ALREADY_STARTED',
    source: EventSource,
  ): Promise<string | undefined> {
    // Data-modifying CTEs run whether or not the final SELECT reads them, all on one snapshot. The
    // casts: parameters in a SELECT list get no type from the INSERT's columns.
    const res = await this.pool.query<{ reason: string }>(
      prepared(
        `WITH pending AS (SELECT reason FROM ingress.pending_cancels WHERE order_id = $3),
       saga AS (
         INSERT INTO ingress.order_sagas (order_id, workflow_id, first_event_id, source_topic)
         SELECT $3::text, $8::text, $1::uuid, $5::text WHERE NOT EXISTS (SELECT 1 FROM pending)
         ON CONFLICT (order_id) DO NOTHING),
       event AS (
         INSERT INTO ingress.processed_events
           (event_id, event_type, order_id, outcome, source_topic, source_partition, source_offset)
         SELECT $1::uuid, $2::text, $3::text, $4::text, $5::text, $6::int, $7::bigint WHERE NOT EXISTS (SELECT 1 FROM pending)
         ON CONFLICT (event_id) DO NOTHING)
       SELECT reason FROM pending`,
        [...eventRow(entry, outcome, source), workflowId],
      ),
    );
    return res.rows[0]?.reason;
  }
}
