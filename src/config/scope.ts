/**
 * One deployment's names. KTS_SCOPE (empty in production) prefixes every task queue, topic, consumer
 * group, connector, replication slot and publication, so two deployments (or two tests) on the same
 * servers never see each other's work. Plain functions, no I/O.
 */
import type { OutboxConnectorOptions } from '../cdc/outbox-connector';
import {
  defaultOutboxConnectorOptions,
  HEARTBEAT_TOPIC,
  OUTBOX_CONNECTOR_NAME,
  OUTBOX_PUBLICATION_NAME,
  OUTBOX_SLOT_NAME,
  prefixPattern,
} from '../cdc/outbox-connector';
import { TOPICS } from '../events/topics';
import { OUTBOX_TABLES, prefixedTopic } from '../outbox/outbox-constants';
import type { SagaTaskQueues } from '../shared/saga-contract';
import { taskQueuesFor } from '../shared/saga-contract';

/** Letters, digits, '_' and '-': valid in topic, queue and group names, and (with '-' as '_') in PG names. */
export const SCOPE_PATTERN = /^[a-z0-9][a-z0-9_-]{0,47}$/;

export type TopicKey = keyof typeof TOPICS;

export interface ScopeNames {
  /** The scope itself; '' in production. */
  scope: string;
  taskQueues: SagaTaskQueues;
  /** Every domain topic of the deployment, by its key in TOPICS. */
  topics: Record<TopicKey, string>;
  /** Prefix handed to OutboxWriter (rows go to `<prefix>.<topic>`); '' in production. */
  topicPrefix: string;
  groups: { ingress: string; eventStore: string; loyalty: string };
  /** Kafka client id of the ingress consumer. */
  ingressClientId: string;
  connector: { name: string; slotName: string; publicationName: string; heartbeatTopic: string };
}

/** The names of one deployment; `scope` is '' for production's own names. */
export function scopeNames(scope: string): ScopeNames {
  if (scope !== '' && !SCOPE_PATTERN.test(scope)) {
    throw new Error(`invalid scope ${JSON.stringify(scope)}: use lower-case letters, digits, '_' and '-' (max 48)`);
  }
  const dotted = (name: string) => (scope ? `${scope}.${name}` : name);
  // PostgreSQL identifiers (slot, publication): no '-' or '.', and slots allow only [a-z0-9_].
  const pgName = (name: string) => (scope ? `${scope.replace(/-/g, '_')}_${name}` : name);
  const topics = Object.fromEntries(
    Object.entries(TOPICS).map(([key, topic]) => [key, prefixedTopic(scope, topic)]),
  ) as Record<TopicKey, string>;
  return {
    scope,
    taskQueues: taskQueuesFor(scope),
    topics,
    topicPrefix: scope,
    groups: { ingress: dotted('order-ingress'), eventStore: dotted('event-store'), loyalty: dotted('loyalty') },
    ingressClientId: dotted('order-ingress'),
    connector: {
      name: dotted(OUTBOX_CONNECTOR_NAME),
      slotName: pgName(OUTBOX_SLOT_NAME),
      publicationName: pgName(OUTBOX_PUBLICATION_NAME),
      heartbeatTopic: dotted(HEARTBEAT_TOPIC),
    },
  };
}

/**
 * The outbox connector of a deployment: production's for the empty scope; otherwise its own
 * connector, slot and publication over the shared outbox tables, publishing only its scope's topics.
 */
export function connectorOptionsFor(names: ScopeNames): OutboxConnectorOptions {
  if (!names.scope) return defaultOutboxConnectorOptions();
  return {
    ...names.connector,
    topicPattern: prefixPattern(names.scope),
    // Not on stop: a config update or a restart also stops the task, and its offsets would then
    // point into a dropped slot. Removing the connector drops the slot (removeOutboxConnector).
    dropSlotOnStop: false,
    tables: OUTBOX_TABLES,
  };
}
