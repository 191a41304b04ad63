import type { Producer } from 'kafkajs';

import { OUTBOX_HEADERS } from '../outbox/outbox-constants';
import type { EventStore, ReplayFilter } from './event-store';

/** Header on replayed records, so a consumer can tell a replay from the original publication. */
export const REPLAYED_FROM_HEADER = 'kts-replayed-from';

/**
 * Sends the stored events matching `filter`, oldest first, to `topic` for a new consumer: the very
 * bytes that were on Kafka, keyed by orderId (per-order order holds), with the outbox headers.
 * Consumers that dedupe by eventId treat a replay of something they saw as a no-op. Returns the
 * number of records sent.
 */
export async function replayToTopic(
  store: EventStore,
  producer: Producer,
  filter: ReplayFilter,
  topic: string,
): Promise<number> {
  let sent = 0;
  let batch: Parameters<Producer['send']>[0]['messages'] = [];
  const flush = async () => {
    if (!batch.length) return;
    await producer.send({ topic, acks: -1, messages: batch });
    sent += batch.length;
    batch = [];
  };
  for await (const e of store.range(filter)) {
    const headers: Record<string, string> = {
      [OUTBOX_HEADERS.eventId]: e.eventId,
      [OUTBOX_HEADERS.eventType]: e.eventType,
      [REPLAYED_FROM_HEADER]: 'event-store',
    };
    if (e.traceparent) headers[OUTBOX_HEADERS.traceparent] = e.traceparent;
    batch.push({ key: e.orderId, value: e.raw, headers });
    if (batch.length >= 500) await flush();
  }
  await flush();
  return sent;
}
