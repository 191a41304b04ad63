/**
 * Provisioning's settings: the provision role's section of the one settings model (superuser URL,
 * every role's URL and so its password, Connect URL, topic layout) plus the shared sections (Kafka,
 * registry, Temporal with their TLS and credentials), turned into the plan's declarations and the
 * targets it applies them to. Provisioning is the only holder of the superuser URL.
 */
import type { OutboxConnectorOptions } from '../cdc/outbox-connector';
import { connectorOptionsFor } from '../config/scope';
import type { KafkaSettings, PostgresSettings, RegistrySettings, Settings, TemporalSettings } from '../config/settings';
import type { Env } from '../config/settings';
import { loadSettings, roleFromUrl } from '../config/settings';
import type { CredentialOwner, PlanSettings } from './plan';

/** Where provisioning applies the plan, with the credentials it needs for that. */
export interface ProvisionTargets {
  /** Superuser URL: creates roles, schemas and the publication; Debezium logs in with it too. */
  adminUrl: string;
  /** Password of every role provisioning creates (from that role's URL). */
  passwords: Record<CredentialOwner, string>;
  connectUrl: string;
  kafka: KafkaSettings;
  registry: RegistrySettings;
  temporal: TemporalSettings;
  postgres: PostgresSettings;
  /** The connector of this scope (its Connect configuration is derived from it), when CDC is planned. */
  connector: OutboxConnectorOptions | null;
}

export interface ProvisionSettings {
  plan: PlanSettings;
  targets: ProvisionTargets;
}

/** Provisioning's view of already parsed settings (the main job parses them once for every role). */
export function provisionSettingsFrom(settings: Settings<'provision'>): ProvisionSettings {
  const p = settings.roles.provision;
  const names = settings.common.names;
  const connector = connectorOptionsFor(names);
  const password = (owner: CredentialOwner) => roleFromUrl(p.roleUrls[owner]).password;
  return {
    plan: {
      topicPrefix: names.topicPrefix,
      replicationFactor: p.topics.replicationFactor,
      minInsyncReplicas: p.topics.minInsyncReplicas,
      orderPartitions: p.topics.orderPartitions,
      domainPartitions: p.topics.domainPartitions,
      maxSlotWalKeepSizeMb: p.maxSlotWalKeepSizeMb,
      temporalNamespace: settings.temporal.namespace,
      cdc: {
        connectorName: connector.name,
        publicationName: connector.publicationName,
        heartbeatTopic: connector.heartbeatTopic,
      },
    },
    targets: {
      adminUrl: p.adminUrl,
      passwords: {
        orders: password('orders'),
        inventory: password('inventory'),
        payments: password('payments'),
        notifications: password('notifications'),
        card_gateway: password('card_gateway'),
        ingress: password('ingress'),
        event_store: password('event_store'),
        loyalty: password('loyalty'),
        cdc: password('cdc'),
        outbox_cleaner: password('outbox_cleaner'),
      },
      connectUrl: p.connectUrl,
      kafka: settings.kafka,
      registry: settings.registry,
      temporal: settings.temporal,
      postgres: settings.postgres,
      // Topics Debezium creates itself get the same replication as provisioning's.
      connector: {
        ...connector,
        topicReplication: {
          replicationFactor: p.topics.replicationFactor,
          minInsyncReplicas: p.topics.minInsyncReplicas,
        },
      },
    },
  };
}

/** Parses provisioning's settings once (the provision role of the settings model), failing fast. */
export function loadProvisionSettings(env: Env = process.env): ProvisionSettings {
  return provisionSettingsFrom(loadSettings(['provision'], env));
}
