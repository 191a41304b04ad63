/**
 * Wires the Orders API from its settings: the orders role's pool, the outbox writer (registry
 * codec), the Temporal client for saga status. Tests start several, each with its own scope.
 */
import { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';

import { connectTemporal, createPgPool, createRegistryClient } from '../config/clients';
import { EventCodec } from '../events/codec';
import type { Logger } from '../observability/logger';
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
  authMode: ApiConfig['roles']['api']['auth']['mode'];
  stop(): Promise<void>;
}

/**
 * Verifies as its own role what provisioning made (the orders schema, the subjects it writes with),
 * then builds and starts listening; port 0 picks a free port.
 */
export async function startOrdersApi(settings: ApiConfig, log?: Logger): Promise<OrdersApi> {
  const cfg = settings.roles.api;
  await verifyRoles(['api'], {
    schemaUrls: { orders: cfg.pgUrl },
    registry: settings.registry,
    pgSsl: settings.postgres.ssl,
  });
  const pool = createPgPool(cfg.pgUrl, settings.postgres, { applicationName: 'kts-api' });
  const connection = await connectTemporal(settings.temporal);
  const client = new Client({ connection, namespace: settings.temporal.namespace });
  const outbox = new OutboxWriter({
    codec: new EventCodec(createRegistryClient(settings.registry)),
    topicPrefix: settings.common.names.topicPrefix,
  });
  const server = buildApiServer({
    store: new OrdersStore(pool, outbox),
    saga: new TemporalSagaStatusReader(client),
    auth: createAuthenticator(cfg.auth),
    bodyLimitBytes: cfg.bodyLimitBytes,
    onInternalError: (err) =>
      log
        ? log.error({ err }, 'orders API internal error')
        : process.stderr.write(`orders API internal error: ${String((err as Error).stack ?? err)}\n`),
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
