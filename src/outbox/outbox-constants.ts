/**
 * Names shared by the outbox writer, the Debezium connector configuration and the consumers of the
 * events it publishes. Plain constants; which services keep an outbox is the service registry's.
 */
import { OUTBOX_SERVICE_NAMES } from '../services/registry';

export type { OutboxService } from '../services/registry';

export const OUTBOX_TABLE = 'outbox';

/** `schema.table` of every outbox, as Debezium's table.include.list and the publication name them. */
export const OUTBOX_TABLES: readonly string[] = OUTBOX_SERVICE_NAMES.map((s) => `${s}.${OUTBOX_TABLE}`);

/**
 * Kafka headers of a published outbox event. Debezium's Outbox Event Router sets `id` itself; the
 * others are outbox columns it copies into headers (see the connector's additional placement).
 */
export const OUTBOX_HEADERS = {
  eventId: 'id',
  eventType: 'event-type',
  /** W3C trace context of the transaction that wrote the row. */
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;

/**
 * Destination topic of an event under an optional prefix. Production uses no prefix; tests and
 * benchmarks pass a unique one (their connector publishes only their own prefix's rows), following
 * the same `<prefix>.<topic>` rule as the ingress test scopes.
 */
export function prefixedTopic(prefix: string, topic: string): string {
  return prefix ? `${prefix}.${topic}` : topic;
}

/**
 * The outbox `aggregatetype` of every saga event: all of them are facts about one order, keyed by
 * its orderId, so one order's events keep their order on every topic's partition.
 */
export const ORDER_AGGREGATE_TYPE = 'order';
