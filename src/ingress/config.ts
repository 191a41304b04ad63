import { z } from 'zod';

import { formatEnvIssues, loadStackConfig, stackEndpoints } from '../config/stack-config';
import { TOPICS } from '../events/topics';

const ms = z.coerce.number().int().min(1).max(600_000);
const ingressEnvSchema = z.object({
  KTS_INGRESS_GROUP_ID: z.string().min(1).default('order-ingress'),
  KTS_INGRESS_CLIENT_ID: z.string().min(1).default('order-ingress'),
  KTS_INGRESS_PLACED_TOPIC: z.string().min(1).default(TOPICS.orderPlaced),
  KTS_INGRESS_CANCELLED_TOPIC: z.string().min(1).default(TOPICS.orderCancelled),
  /** Prefix of the saga's task queues (see taskQueuesFor); empty in production. */
  KTS_INGRESS_TASK_QUEUE_PREFIX: z.string().default(''),
  KTS_INGRESS_PARTITION_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
  KTS_INGRESS_MAX_PAYLOAD_BYTES: z.coerce
    .number()
    .int()
    .min(64)
    .max(10_000_000)
    .default(256 * 1024),
  KTS_INGRESS_BACKOFF_INITIAL_MS: ms.default(250),
  KTS_INGRESS_BACKOFF_MAX_MS: ms.default(10_000),
  /** Deadline of one Temporal call (start or signal), retries included. */
  KTS_INGRESS_TEMPORAL_TIMEOUT_MS: ms.default(10_000),
  /** How often consumer lag, dead-letter queue size and sagas in flight are refreshed for /metrics. */
  KTS_INGRESS_LAG_INTERVAL_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  KTS_INGRESS_SESSION_TIMEOUT_MS: z.coerce.number().int().min(6_000).max(300_000).default(30_000),
  KTS_TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  /** A saga parked longer than this counts in kts_sagas_parked_overdue, which the SagaParkedTooLong alert watches. */
  KTS_PARKED_ALERT_AFTER_SECONDS: z.coerce.number().int().min(1).default(3_600),
  KTS_DB_PASSWORD_INGRESS: z.string().min(8, 'must be at least 8 characters').default('ingress-dev-password'),
  KTS_INGRESS_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface IngressConfig {
  groupId: string;
  clientId: string;
  topics: { placed: string; cancelled: string };
  taskQueuePrefix: string;
  partitionConcurrency: number;
  maxPayloadBytes: number;
  backoff: { initialMs: number; maxMs: number };
  temporalTimeoutMs: number;
  sessionTimeoutMs: number;
  lagIntervalMs: number;
  parkedAlertAfterMs: number;
  kafkaBrokers: string[];
  registryUrl: string;
  temporalAddress: string;
  temporalNamespace: string;
  db: { adminUrl: string; role: string; password: string; url: string };
  logLevel: string;
}

/** Parses the ingress settings from the environment once, failing fast with a readable message. */
export function loadIngressConfig(env: NodeJS.ProcessEnv = process.env): IngressConfig {
  const parsed = ingressEnvSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid ingress settings: ${formatEnvIssues(parsed.error)}`);
  const e = parsed.data;
  if (e.KTS_INGRESS_BACKOFF_MAX_MS < e.KTS_INGRESS_BACKOFF_INITIAL_MS) {
    throw new Error('invalid ingress settings: KTS_INGRESS_BACKOFF_MAX_MS is below KTS_INGRESS_BACKOFF_INITIAL_MS');
  }
  if (e.KTS_INGRESS_PLACED_TOPIC === e.KTS_INGRESS_CANCELLED_TOPIC) {
    throw new Error('invalid ingress settings: the placed and cancelled topics must differ');
  }
  const endpoints = stackEndpoints(loadStackConfig(env));
  const role = 'kts_ingress';
  const url = new URL(endpoints.postgresUrl);
  url.username = role;
  url.password = e.KTS_DB_PASSWORD_INGRESS;
  return {
    groupId: e.KTS_INGRESS_GROUP_ID,
    clientId: e.KTS_INGRESS_CLIENT_ID,
    topics: { placed: e.KTS_INGRESS_PLACED_TOPIC, cancelled: e.KTS_INGRESS_CANCELLED_TOPIC },
    taskQueuePrefix: e.KTS_INGRESS_TASK_QUEUE_PREFIX,
    partitionConcurrency: e.KTS_INGRESS_PARTITION_CONCURRENCY,
    maxPayloadBytes: e.KTS_INGRESS_MAX_PAYLOAD_BYTES,
    backoff: { initialMs: e.KTS_INGRESS_BACKOFF_INITIAL_MS, maxMs: e.KTS_INGRESS_BACKOFF_MAX_MS },
    temporalTimeoutMs: e.KTS_INGRESS_TEMPORAL_TIMEOUT_MS,
    sessionTimeoutMs: e.KTS_INGRESS_SESSION_TIMEOUT_MS,
    lagIntervalMs: e.KTS_INGRESS_LAG_INTERVAL_MS,
    parkedAlertAfterMs: e.KTS_PARKED_ALERT_AFTER_SECONDS * 1000,
    kafkaBrokers: endpoints.kafkaBrokers,
    registryUrl: endpoints.registryUrl,
    temporalAddress: endpoints.temporalAddress,
    temporalNamespace: e.KTS_TEMPORAL_NAMESPACE,
    db: { adminUrl: endpoints.postgresUrl, role, password: e.KTS_DB_PASSWORD_INGRESS, url: url.toString() },
    logLevel: e.KTS_INGRESS_LOG_LEVEL,
  };
}
