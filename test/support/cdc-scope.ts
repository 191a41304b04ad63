import pg from 'pg';

import type { OutboxConnectorOptions } from '../../src/cdc/outbox-connector';
import {
  HEARTBEAT_TOPIC,
  ensureOutboxConnector,
  prefixPattern,
  removeOutboxConnector,
} from '../../src/cdc/outbox-connector';
import { EventCodec } from '../../src/events/codec';
import { RegistryClient } from '../../src/kafka/registry-client';
import { OUTBOX_TABLES } from '../../src/outbox/outbox-constants';
import { OutboxWriter } from '../../src/outbox/outbox-writer';
import { provisionScope } from './provision-scope';
import { endpoints, stackConfig, uniqueName } from './stack';

/** A test's own connector, slot, publication and topic prefix over the shared outbox tables. */
export interface CdcScope {
  prefix: string;
  options: OutboxConnectorOptions;
  writer: OutboxWriter;
  codec: EventCodec;
  /** Superuser pool for assertions on the outbox tables and slots. */
  admin: pg.Pool;
  stop(): Promise<void>;
}

export function cdcOptions(prefix: string): OutboxConnectorOptions {
  return {
    name: prefix,
    slotName: prefix,
    publicationName: `${prefix}_pub`,
    topicPattern: prefixPattern(prefix),
    heartbeatTopic: `${prefix}.${HEARTBEAT_TOPIC}`,
    // Not on stop: a config update or a restart also stops the task, and its offsets would then
    // point into a dropped slot. stop() drops the slot once the connector is gone.
    dropSlotOnStop: false,
    tables: OUTBOX_TABLES,
  };
}

/**
 * Registers the scope's connector on the shared Connect worker (unless `register` is false). Pass
 * `prefix` to share an ingress test scope's topics (`<prefix>.order.placed`, …).
 */
export async function startCdcScope(
  name: string,
  { register = true, prefix = uniqueName(name) }: { register?: boolean; prefix?: string } = {},
): Promise<CdcScope> {
  const options = cdcOptions(prefix);
  // The scope's domain topics exist before anything consumes them (the event store only verifies).
  await provisionScope(prefix, { include: ['topic'] });
  if (register) await ensureOutboxConnector(stackConfig, options);
  const codec = new EventCodec(new RegistryClient(endpoints.registryUrl));
  const admin = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 4 });
  return {
    prefix,
    options,
    codec,
    writer: new OutboxWriter({ codec, topicPrefix: prefix }),
    admin,
    async stop() {
      // Drops the slot too: an abandoned slot makes the server keep WAL forever.
      await removeOutboxConnector(stackConfig, options);
      await admin.end();
    },
  };
}
