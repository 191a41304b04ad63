/**
 * The outbox writer of a worker process, from its environment: the registry to encode with and the
 * prefix of the destination topics.
 */
import { z } from 'zod';

import { formatEnvIssues, loadStackConfig, stackEndpoints } from '../config/stack-config';
import { EventCodec } from '../events/codec';
import { RegistryClient } from '../kafka/registry-client';
import { OutboxWriter } from './outbox-writer';

const outboxEnvSchema = z.object({
  /** Prefix of the topics the services' outbox rows go to (tests and benchmarks); empty in production. */
  KTS_OUTBOX_TOPIC_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]*$/)
    .default(''),
});

/** Parses the outbox settings once (failing fast with a readable message) and builds the writer. */
export function outboxWriterFromEnv(env: NodeJS.ProcessEnv = process.env): OutboxWriter {
  const parsed = outboxEnvSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid outbox settings: ${formatEnvIssues(parsed.error)}`);
  const { registryUrl } = stackEndpoints(loadStackConfig(env));
  return new OutboxWriter({
    codec: new EventCodec(new RegistryClient(registryUrl)),
    topicPrefix: parsed.data.KTS_OUTBOX_TOPIC_PREFIX,
  });
}
