/**
 * The event store's Kafka consumer: every domain topic, each record decoded and appended (deduped by
 * eventId) before its offset is committed, so a crash redelivers rather than loses.
 */
import type { Consumer, KafkaMessage } from 'kafkajs';

import { createKafka, createPgPool, createRegistryClient } from '../config/clients';
import type { Settings } from '../config/settings';
import { TOPICS } from '../events/topics';
import { OUTBOX_HEADERS, prefixedTopic } from '../outbox/outbox-constants';
import { verifyRoles } from '../provision/verify';
import { DomainDecodeError, DomainEventDecoder } from './domain-event-decoder';
import { EventStore } from './event-store';

/** The event store's settings: the shared sections plus its own role section. */
export type EventStoreConfig = Settings<'eventStore'>;

/** Every domain topic a service publishes through its outbox. */
export const DOMAIN_TOPICS: readonly string[] = Object.values(TOPICS);

/** The consumer group and topics of the store under the settings' scope. */
export function eventStoreSubscription(settings: EventStoreConfig): { groupId: string; topics: string[] } {
  const names = settings.common.names;
  return { groupId: names.groups.eventStore, topics: DOMAIN_TOPICS.map((t) => prefixedTopic(names.topicPrefix, t)) };
}

function header(m: KafkaMessage, name: string): string | undefined {
  const v = m.headers?.[name];
  const first = Array.isArray(v) ? v[0] : v;
  return first?.toString();
}

export interface EventStoreConsumer {
  store: EventStore;
  consumer: Consumer;
  stop(): Promise<void>;
}

/**
 * Starts consuming, after verifying as its own role that provisioning migrated the store and created
 * every domain topic (fails fast with one line saying what to run). A registry outage throws from
 * the handler, so kafkajs retries the same record with backoff instead of skipping it.
 */
export async function startEventStoreConsumer(settings: EventStoreConfig): Promise<EventStoreConsumer> {
  const cfg = eventStoreSubscription(settings);
  await verifyRoles(['eventStore'], {
    schemaUrls: { event_store: settings.roles.eventStore.pgUrl },
    topics: cfg.topics,
    kafka: settings.kafka,
    pgSsl: settings.postgres.ssl,
  });
  const pool = createPgPool(settings.roles.eventStore.pgUrl, settings.postgres, {
    max: 4,
    applicationName: 'kts-event-store',
  });
  const store = new EventStore(pool);
  const decoder = new DomainEventDecoder(createRegistryClient(settings.registry));
  const kafka = createKafka(settings.kafka, cfg.groupId);
  const consumer = kafka.consumer({ groupId: cfg.groupId, retry: { retries: Number.MAX_SAFE_INTEGER } });
  await consumer.connect();
  await consumer.subscribe({ topics: cfg.topics, fromBeginning: true });
  await consumer.run({
    partitionsConsumedConcurrently: 4,
    eachMessage: async ({ topic, partition, message }) => {
      const source = { topic, partition, offset: message.offset };
      // Heartbeat-sized or empty records are not events of ours; keep them visible, never block.
      try {
        const event = await decoder.decode(message.value);
        await store.append(event, message.value!, source, header(message, OUTBOX_HEADERS.traceparent));
      } catch (err) {
        // Only a record that can never decode is set aside; anything else (a registry or database
        // outage) throws, so kafkajs retries the same record instead of skipping it.
        if (!(err instanceof DomainDecodeError)) throw err;
        await store.reject(source, err.type, err.message, message.value);
      }
    },
  });
  return {
    store,
    consumer,
    async stop() {
      await consumer.disconnect();
      await pool.end();
    },
  };
}
