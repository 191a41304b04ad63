import crypto from 'node:crypto';

import type { EachMessagePayload } from 'kafkajs';
import { Kafka, logLevel } from 'kafkajs';

import { loadStackConfig, stackEndpoints } from '../../src/config/stack-config';

export const stackConfig = loadStackConfig();
export const endpoints = stackEndpoints(stackConfig);

/**
 * THE way tests make names and ids no other test (or earlier run) uses: topics, queues, scopes, order/customer ids,
 * SKUs, idempotency keys. The suffix is lower-case letters, digits and '_', so the name suits PG when the prefix does.
 * (Event ids are not names: they stay UUIDs.)
 */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${crypto.randomBytes(3).toString('hex')}`;
}

export function kafkaClient(clientId = 'test'): Kafka {
  return new Kafka({ clientId, brokers: endpoints.kafkaBrokers, logLevel: logLevel.ERROR });
}

/**
 * Reads a topic from the beginning with a fresh group until `done` says enough arrived, or fails
 * after `timeoutMs` listing what did arrive.
 */
export async function consumeUntil(
  topic: string,
  done: (messages: EachMessagePayload['message'][]) => boolean,
  timeoutMs = 60_000,
): Promise<EachMessagePayload['message'][]> {
  // Create the topic if its producer (e.g. Debezium) has not yet: subscribing to a missing topic fails.
  const admin = kafkaClient().admin();
  await admin.connect();
  if (!(await admin.listTopics()).includes(topic)) {
    await admin.createTopics({ topics: [{ topic }], waitForLeaders: true });
  }
  await admin.disconnect();
  const consumer = kafkaClient().consumer({ groupId: uniqueName('test_group') });
  const seen: EachMessagePayload['message'][] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out after ${timeoutMs} ms on ${topic}; got ${seen.length} message(s)`)),
        timeoutMs,
      );
      consumer
        .run({
          eachMessage: ({ message }) => {
            seen.push(message);
            if (done(seen)) {
              clearTimeout(timer);
              resolve();
            }
            return Promise.resolve();
          },
        })
        .catch(reject);
    });
    return seen;
  } finally {
    await consumer.disconnect();
  }
}
