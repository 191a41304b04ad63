/**
 * The append-only event store (schema `event_store`, role `kts_event_store`): appends deduped by
 * eventId, an order's history, and range reads for replay.
 */
import type pg from 'pg';

import { toSafeInteger } from '../db/pools';
import { prepared } from '../db/prepared';
import type { DecodedDomainEvent } from './domain-event-decoder';
import type { StoredEvent } from './order-state';

export const EVENT_STORE_SCHEMA = 'event_store';

export interface EventSource {
  topic: string;
  partition: number;
  offset: string;
}

export interface ReplayFilter {
  eventTypes?: readonly string[];
  from?: Date;
  to?: Date;
  orderId?: string;
}

export interface StoredRecord extends StoredEvent {
  raw: Buffer;
  traceparent: string | null;
}

interface EventRow {
  seq: string;
  event_id: string;
  event_type: string;
  event_version: number;
  order_id: string;
  occurred_at: Date;
  payload: Record<string, unknown>;
  raw: Buffer;
  traceparent: string | null;
}

const toRecord = (r: EventRow): StoredRecord => ({
  seq: toSafeInteger(r.seq, 'seq'),
  eventId: r.event_id,
  eventType: r.event_type,
  eventVersion: r.event_version,
  orderId: r.order_id,
  occurredAt: r.occurred_at,
  payload: r.payload,
  raw: r.raw,
  traceparent: r.traceparent,
});

export class EventStore {
  constructor(private readonly db: pg.Pool) {}

  /**
   * Appends one event unless its eventId is already stored (a re-published outbox row, a replay,
   * a redelivered Kafka record). Returns true when it was new.
   */
  async append(e: DecodedDomainEvent, raw: Buffer, source: EventSource, traceparent?: string): Promise<boolean> {
    const res = await this.db.query(
      prepared(
        `INSERT INTO event_store.events (event_id, event_type, event_version, order_id, occurred_at, payload, raw,
         schema_id, source_topic, source_partition, source_offset, traceparent)
       VALUES ($1, $2, $3, $4, to_timestamp($5::double precision / 1000), $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (event_id) DO NOTHING`,
        [
          e.eventId,
          e.eventType,
          e.eventVersion,
          e.orderId,
          e.occurredAt,
          JSON.stringify(e.payload),
          raw,
          e.schemaId,
          source.topic,
          source.partition,
          source.offset,
          traceparent ?? null,
        ],
      ),
    );
    return res.rowCount === 1;
  }

  /** Keeps a record that can never decode, once per position. */
  async reject(source: EventSource, reason: string, message: string, raw: Buffer | null): Promise<void> {
    await this.db.query(
      prepared(
        `INSERT INTO event_store.rejected_records (source_topic, source_partition, source_offset, reason, message, raw)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
        [source.topic, source.partition, source.offset, reason, message.slice(0, 2000), raw],
      ),
    );
  }

  /**
   * An order's events in causal order. Each step of the saga writes its event after the previous
   * step committed, so occurredAt orders them; the store's sequence breaks exact ties.
   */
  async history(orderId: string): Promise<StoredRecord[]> {
    const { rows } = await this.db.query<EventRow>(
      'SELECT * FROM event_store.events WHERE order_id = $1 ORDER BY occurred_at, seq',
      [orderId],
    );
    return rows.map(toRecord);
  }

  /** Events matching the filter, oldest first, in pages (memory stays flat for any range). */
  async *range(filter: ReplayFilter, pageSize = 500): AsyncGenerator<StoredRecord> {
    let after = null as { at: Date; seq: number } | null;
    for (;;) {
      const { rows }: { rows: EventRow[] } = await this.db.query<EventRow>(
        `SELECT * FROM event_store.events
          WHERE ($1::text[] IS NULL OR event_type = ANY($1))
            AND ($2::timestamptz IS NULL OR occurred_at >= $2)
            AND ($3::timestamptz IS NULL OR occurred_at <= $3)
            AND ($4::text IS NULL OR order_id = $4)
            AND ($5::timestamptz IS NULL OR (occurred_at, seq) > ($5, $6))
          ORDER BY occurred_at, seq LIMIT $7`,
        [
          filter.eventTypes?.length ? filter.eventTypes : null,
          filter.from ?? null,
          filter.to ?? null,
          filter.orderId ?? null,
          after?.at ?? null,
          after?.seq ?? 0,
          pageSize,
        ],
      );
      for (const r of rows) yield toRecord(r);
      const last = rows.at(-1);
      if (!last || rows.length < pageSize) return;
      after = { at: last.occurred_at, seq: toSafeInteger(last.seq, 'seq') };
    }
  }
}
