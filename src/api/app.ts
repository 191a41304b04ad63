/**
 * Wires the Orders API from its settings: the orders role's pool, the outbox writer (registry
 * codec), the Temporal client for saga status. Tests start several, each with its own prefix.
 */
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';

import type { DbConfig } from '../db/db-config';
import { loadDbConfig } from '../db/db-config';
import { EventCodec } from '../events/codec';
import { RegistryClient } from '../kafka/registry-client';
import { OutboxWriter } from '../outbox/outbox-writer';
import { verifyRoles } from '../provision/verify';
import type { ApiConfig } from './api-config';
import { createAuthenticator } from './auth';
import { OrdersStore } from './orders-store';
import { TemporalSagaStatusReader } from './saga-status';
import { buildApiServer } from './server';

export interface OrdersApi {
  server: FastifyInstance;
  /** Base URL once listening, e.g. http://127.0.0.1:8090. */
  url: string;
  /** Which authentication guards the orders routes (off on the local stack). */
  authMode: ApiConfig['auth']['mode'];
  stop(): Promise<void>;
}

/**
 * Verifies as the orders role what provisioning made (its schema, the subjects it writes with), then
 * builds and starts listening; port 0 picks a free port.
 */
export async function startOrdersApi(cfg: ApiConfig, db: DbConfig = loadDbConfig()): Promise<OrdersApi> {
  await verifyRoles(['api'], { schemaUrls: { orders: db.owners.orders.url }, registryUrl: cfg.registryUrl });
  const pool = new pg.Pool({ connectionString: db.owners.orders.url, max: db.poolSize, application_name: 'kts-api' });
  pool.on('error', () => undefined);
  const connection = await Connection.connect({ address: cfg.temporalAddress });
  const client = new Client({ connection, namespace: cfg.temporalNamespace });
  const outbox = new OutboxWriter({
    codec: new EventCodec(new RegistryClient(cfg.registryUrl)),
    topicPrefix: cfg.topicPrefix,
  });
  const server = buildApiServer({
    store: new OrdersStore(pool, outbox),
    saga: new TemporalSagaStatusReader(client),
    auth: createAuthenticator(cfg.auth),
    bodyLimitBytes: cfg.bodyLimitBytes,
    onInternalError: (err) =>
      process.stderr.write(`orders API internal error: ${String((err as Error).stack ?? err)}\n`),
  });
  const url = await server.listen({ port: cfg.port, host: cfg.host });
  return {
    server,
    url,
    authMode: cfg.auth.mode,
    async stop() {
      await server.close();
      await connection.close();
      await pool.end();
    },
  };
}
