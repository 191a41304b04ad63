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
import { DomainEventDecoder } from './domain-event-decoder';
import type { EventStoreDbConfig } from './event-store';
import { EventStore, loadEventStoreDbConfig, migrateEventStore } from './event-store';

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
 * Starts consuming (migrating the store first; idempotent). Topics are created when missing so a
 * fresh cluster works before any service has published. A registry outage throws from the handler,
 * so kafkajs retries the same record with backoff instead of skipping it.
 */
export async function startEventStoreConsumer(cfg: EventStoreConfig): Promise<EventStoreConsumer> {
  await migrateEventStore(cfg.db);
  const pool = new PgLib.Pool({ connectionString: cfg.db.url, max: 4, application_name: 'kts-event-store' });
  pool.on('error', () => undefined);
  const store = new EventStore(pool);
  const decoder = new DomainEventDecoder(new RegistryClient(cfg.registryUrl));
  const kafka = new Kafka({ clientId: cfg.groupId, brokers: cfg.kafkaBrokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const existing = new Set(await admin.listTopics());
  const missing = cfg.topics.filter((t) => !existing.has(t));
  if (missing.length) {
    await admin.createTopics({ topics: missing.map((topic) => ({ topic, numPartitions: 3 })), waitForLeaders: true });
  }
  await admin.disconnect();
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
        const type = (err as { type?: string }).type;
        if (!type) throw err;
        await store.reject(source, type, (err as Error).message, message.value);
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
