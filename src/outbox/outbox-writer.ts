/**
 * The transactional outbox writer: services call {@link OutboxWriter.emit} with the SQL client of
 * the transaction that changes their state and an event built by its factory (see
 * src/events/event-factory.ts), so the event exists exactly when the change commits.
 */
import { context, propagation } from '@opentelemetry/api';
import type pg from 'pg';

import { prepared } from '../db/prepared';
import type { EventCodec } from '../events/codec';
import type { DomainEvent, EventMessage } from '../events/event-factory';
import type { OutboxService } from './outbox-constants';
import { OUTBOX_HEADERS, OUTBOX_TABLE, prefixedTopic } from './outbox-constants';

export type { DomainEvent } from '../events/event-factory';

/** An event built by hand and where it goes; services use {@link OutboxWriter.emit} with a factory's message. */
export interface OutboxEntry<E extends DomainEvent> {
  /** Canonical topic (a TOPICS value); the writer adds its prefix. */
  topic: string;
  /** Kind of aggregate, e.g. 'order'. The aggregate id is the event's orderId: the Kafka key. */
  aggregateType: string;
  event: E;
  /** W3C trace context; defaults to the active OpenTelemetry context (none outside a span). */
  trace?: { traceparent?: string; tracestate?: string };
}

export interface OutboxWriterOptions {
  codec: EventCodec;
  /** Prefix of destination topics; empty in production (see prefixedTopic). */
  topicPrefix?: string;
}

/** Minimal SQL surface: a pg.PoolClient inside BEGIN … COMMIT, or a Tx from runIdempotent. */
export type Queryable = Pick<pg.ClientBase, 'query' | 'escapeIdentifier'>;

function activeTrace(): { traceparent?: string; tracestate?: string } {
  const carrier: Record<string, string> = {};
  // Uses whatever propagator the process registered (W3C, see src/observability/tracing.ts); none = {}.
  propagation.inject(context.active(), carrier);
  return { traceparent: carrier[OUTBOX_HEADERS.traceparent], tracestate: carrier[OUTBOX_HEADERS.tracestate] };
}

export class OutboxWriter {
  private readonly codec: EventCodec;
  readonly topicPrefix: string;

  constructor(options: OutboxWriterOptions) {
    this.codec = options.codec;
    this.topicPrefix = options.topicPrefix ?? '';
  }

  /** The topic a row for `topic` is published to. */
  destination(topic: string): string {
    return prefixedTopic(this.topicPrefix, topic);
  }

  /**
   * Appends the event `message` (built by its type's factory) to its service's outbox through `tx`:
   * see {@link append}. Must be called inside the transaction of the state change. Returns the
   * row's topic.
   */
  emit<E extends DomainEvent>(
    tx: Queryable,
    message: EventMessage<E>,
    trace?: OutboxEntry<E>['trace'],
  ): Promise<string> {
    return this.insert(
      tx,
      message.service,
      message.topic,
      message.aggregateType,
      message.aggregateId,
      message.event,
      trace,
    );
  }

  /**
   * Serializes `event` with the registry (Confluent-framed Avro, subject `<topic>-value` of the
   * canonical topic, so prefixed test topics share the production schemas) and inserts it into
   * `<service>.outbox` through `tx`. Must be called inside the transaction of the state change.
   * Idempotent by eventId: appending the same event twice leaves one row. Returns the row's topic.
   * The aggregate id is the event's orderId.
   */
  append<E extends DomainEvent>(tx: Queryable, service: OutboxService, entry: OutboxEntry<E>): Promise<string> {
    return this.insert(tx, service, entry.topic, entry.aggregateType, entry.event.orderId, entry.event, entry.trace);
  }

  private async insert(
    tx: Queryable,
    service: OutboxService,
    canonicalTopic: string,
    aggregateType: string,
    aggregateId: string,
    event: DomainEvent,
    traceContext: OutboxEntry<DomainEvent>['trace'],
  ): Promise<string> {
    const payload = await this.codec.encode(canonicalTopic, event);
    const topic = this.destination(canonicalTopic);
    const trace = traceContext ?? activeTrace();
    await tx.query(
      prepared(
        `INSERT INTO ${tx.escapeIdentifier(service)}.${OUTBOX_TABLE}
         (id, aggregatetype, aggregateid, type, topic, payload, traceparent, tracestate)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
        [
          event.eventId,
          aggregateType,
          aggregateId,
          event.eventType,
          topic,
          payload,
          trace.traceparent ?? null,
          trace.tracestate ?? null,
        ],
      ),
    );
    return topic;
  }
}
