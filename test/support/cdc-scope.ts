import pg from 'pg';

import type { OutboxConnectorOptions } from '../../src/cdc/outbox-connector';
import { ensureOutboxConnector, removeOutboxConnector } from '../../src/cdc/outbox-connector';
import { createRegistryClient } from '../../src/config/clients';
import { connectorOptionsFor, scopeNames } from '../../src/config/scope';
import { EventCodec } from '../../src/events/codec';
import { OutboxWriter } from '../../src/outbox/outbox-writer';
import { provisionScope } from './provision-scope';
import { allSettings, cdcTargetOf } from './settings';
import { endpoints, uniqueName } from './stack';

/** A test's own connector, slot, publication and topics (its scope's names) over the shared outbox tables. */
export interface CdcScope {
  prefix: string;
  options: OutboxConnectorOptions;
  writer: OutboxWriter;
  codec: EventCodec;
  /** Superuser pool for assertions on the outbox tables and slots. */
  admin: pg.Pool;
  stop(): Promise<void>;
}

/** The connector of scope `prefix`: the same names a deployment with KTS_SCOPE=<prefix> provisions. */
export function cdcOptions(prefix: string): OutboxConnectorOptions {
  return connectorOptionsFor(scopeNames(prefix));
}

/**
 * Registers the scope's connector on the shared Connect worker (unless `register` is false). Pass
 * `prefix` to share an ingress test scope (its KTS_SCOPE: `<prefix>.order.placed`, …).
 */
export async function startCdcScope(
  name: string,
  { register = true, prefix = uniqueName(name) }: { register?: boolean; prefix?: string } = {},
): Promise<CdcScope> {
  const options = cdcOptions(prefix);
  // The scope's domain topics exist before anything consumes them (the event store only verifies).
  await provisionScope(prefix, { include: ['topic'] });
  if (register) await ensureOutboxConnector(cdcTargetOf(), options);
  const codec = new EventCodec(createRegistryClient(allSettings.registry));
  const admin = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 4 });
  return {
    prefix,
    options,
    codec,
    writer: new OutboxWriter({ codec, topicPrefix: prefix }),
    admin,
    async stop() {
      // Drops the slot too: an abandoned slot makes the server keep WAL forever.
      await removeOutboxConnector(cdcTargetOf(), options);
      await admin.end();
    },
  };
}
