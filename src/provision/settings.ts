/**
 * Provisioning's settings, read once from the environment: the plan's declarations (scope prefix,
 * partitions, replication, namespace, connector names) and the targets with the admin credentials.
 * Provisioning is the only holder of the superuser URL and of every role's password.
 */
import { z } from 'zod';

import type { OutboxConnectorOptions } from '../cdc/outbox-connector';
import { defaultOutboxConnectorOptions, prefixPattern } from '../cdc/outbox-connector';
import type { StackConfig } from '../config/stack-config';
import { formatEnvIssues, loadStackConfig, stackEndpoints } from '../config/stack-config';
import { loadDbConfig } from '../db/db-config';
import { loadEventStoreDbConfig } from '../event-store/event-store';
import { loadIngressConfig } from '../ingress/config';
import type { MigrationOwner, PlanSettings } from './plan';
import { DOMAIN_TOPIC_PARTITIONS, ORDER_TOPIC_PARTITIONS } from './plan';

const count = (max: number) => z.coerce.number().int().min(1).max(max);
const envSchema = z.object({
  /** Prefix of every topic, subject and of the connector's names (a test or benchmark scope); empty in production. */
  KTS_PROVISION_TOPIC_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]*$/)
    .default(''),
  KTS_TOPIC_REPLICATION_FACTOR: count(16).default(1),
  KTS_ORDER_TOPIC_PARTITIONS: count(1000).default(ORDER_TOPIC_PARTITIONS),
  KTS_DOMAIN_TOPIC_PARTITIONS: count(1000).default(DOMAIN_TOPIC_PARTITIONS),
  KTS_TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  KTS_DB_PASSWORD_CDC: z.string().min(8, 'must be at least 8 characters').default('cdc-dev-password'),
});

/** Where provisioning applies the plan, with the credentials it needs for that. */
export interface ProvisionTargets {
  /** Superuser URL: creates roles, schemas and the publication. */
  adminUrl: string;
  passwords: Record<MigrationOwner, string>;
  kafkaBrokers: string[];
  registryUrl: string;
  temporalAddress: string;
  connectUrl: string;
  stack: StackConfig;
  /** The connector of this scope (its Connect configuration is derived from it), when CDC is planned. */
  connector: OutboxConnectorOptions | null;
}

export interface ProvisionSettings {
  plan: PlanSettings;
  targets: ProvisionTargets;
}

/** Parses provisioning's settings once, failing fast with a readable message. */
export function loadProvisionSettings(env: NodeJS.ProcessEnv = process.env): ProvisionSettings {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid provisioning settings: ${formatEnvIssues(parsed.error)}`);
  const e = parsed.data;
  const stack = loadStackConfig(env);
  const endpoints = stackEndpoints(stack);
  const db = loadDbConfig(env);
  const prefix = e.KTS_PROVISION_TOPIC_PREFIX;
  const connector = prefix ? scopedConnectorOptions(prefix) : defaultOutboxConnectorOptions();
  return {
    plan: {
      topicPrefix: prefix,
      replicationFactor: e.KTS_TOPIC_REPLICATION_FACTOR,
      orderPartitions: e.KTS_ORDER_TOPIC_PARTITIONS,
      domainPartitions: e.KTS_DOMAIN_TOPIC_PARTITIONS,
      temporalNamespace: e.KTS_TEMPORAL_NAMESPACE,
      cdc: {
        connectorName: connector.name,
        publicationName: connector.publicationName,
        heartbeatTopic: connector.heartbeatTopic,
      },
    },
    targets: {
      adminUrl: db.adminUrl,
      passwords: {
        orders: db.owners.orders.password,
        inventory: db.owners.inventory.password,
        payments: db.owners.payments.password,
        notifications: db.owners.notifications.password,
        card_gateway: db.owners.card_gateway.password,
        ingress: loadIngressConfig(env).db.password,
        event_store: loadEventStoreDbConfig(env).password,
        cdc: e.KTS_DB_PASSWORD_CDC,
      },
      kafkaBrokers: endpoints.kafkaBrokers,
      registryUrl: endpoints.registryUrl,
      temporalAddress: endpoints.temporalAddress,
      connectUrl: endpoints.connectUrl,
      stack,
      connector,
    },
  };
}

/** The connector of a prefixed scope: its own names, publishing only the scope's topics. */
export function scopedConnectorOptions(prefix: string): OutboxConnectorOptions {
  const pg = prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const heartbeatTopic = `${prefix}._kts-outbox-heartbeat`;
  return {
    ...defaultOutboxConnectorOptions(),
    name: `${prefix}.kts-outbox`,
    slotName: `${pg}_kts_outbox`,
    publicationName: `${pg}_kts_outbox`,
    topicPattern: prefixPattern(prefix),
    heartbeatTopic,
  };
}
