/**
 * The event store's Kafka consumer: every domain topic, each record decoded and appended (deduped by
 * eventId) before its offset is committed, so a crash redelivers rather than loses.
 */
import type { Consumer, KafkaMessage } from 'kafkajs';
import { Kafka, logLevel } from 'kafkajs';
import PgLib from 'pg';
import { z } from 'zod';

import { formatEnvIssues, loadStackConfig, stackEndpoints } from '../config/stack-config';
import { TOPICS } from '../events/topics';
import { RegistryClient } from '../kafka/registry-client';
import { OUTBOX_HEADERS, prefixedTopic } from '../outbox/outbox-constants';
import { DomainDecodeError, DomainEventDecoder } from './domain-event-decoder';
import type { EventStoreDbConfig } from './event-store';
import { EventStore, loadEventStoreDbConfig } from './event-store';
import { verifyRoles } from '../provision/verify';

const envSchema = z.object({
  KTS_EVENT_STORE_GROUP_ID: z.string().min(1).default('event-store'),
  /** Prefix of the domain topics (tests and benchmarks); empty in production. */
  KTS_EVENT_STORE_TOPIC_PREFIX: z.string().default(''),
});

export interface EventStoreConfig {
  groupId: string;
  topics: string[];
  kafkaBrokers: string[];
  registryUrl: string;
  db: EventStoreDbConfig;
}

/** Every domain topic a service publishes through its outbox. */
export const DOMAIN_TOPICS: readonly string[] = Object.values(TOPICS);

/** Parses the consumer's settings once, failing fast with a readable message. */
export function loadEventStoreConfig(env: NodeJS.ProcessEnv = process.env): EventStoreConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid event store settings: ${formatEnvIssues(parsed.error)}`);
  const endpoints = stackEndpoints(loadStackConfig(env));
  return {
    groupId: parsed.data.KTS_EVENT_STORE_GROUP_ID,
    topics: DOMAIN_TOPICS.map((t) => prefixedTopic(parsed.data.KTS_EVENT_STORE_TOPIC_PREFIX, t)),
    kafkaBrokers: endpoints.kafkaBrokers,
    registryUrl: endpoints.registryUrl,
    db: loadEventStoreDbConfig(env),
  };
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
 * every domain topic (fails fast with one line saying what to run). A registry outage throws from the handler,
 * so kafkajs retries the same record with backoff instead of skipping it.
 */
export async function startEventStoreConsumer(cfg: EventStoreConfig): Promise<EventStoreConsumer> {
  await verifyRoles(['eventStore'], {
    schemaUrls: { event_store: cfg.db.url },
    topics: cfg.topics,
    kafkaBrokers: cfg.kafkaBrokers,
  });
  const pool = new PgLib.Pool({ connectionString: cfg.db.url, max: 4, application_name: 'kts-event-store' });
  pool.on('error', () => undefined);
  const store = new EventStore(pool);
  const decoder = new DomainEventDecoder(new RegistryClient(cfg.registryUrl));
  const kafka = new Kafka({ clientId: cfg.groupId, brokers: cfg.kafkaBrokers, logLevel: logLevel.NOTHING });
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
