import { Connection } from '@temporalio/client';

import { INDEXED_VALUE_TYPES } from '../provision/steps';
import { ORDER_SEARCH_ATTRIBUTES } from '../shared/search-attributes';
import { PrivateTemporal } from './private-temporal';
import { PrivateTemporalServer } from './private-temporal-server';

/** Which Temporal a benchmark or test runs on: the dev server (SQLite) or the full server (PostgreSQL). */
export type EngineKind = 'dev' | 'server';
export const ENGINE_KINDS: readonly EngineKind[] = ['dev', 'server'];

export interface PrivateEngine {
  kind: EngineKind;
  /** Frontend host:port; namespace `default`, with the saga's search attributes registered. */
  address: string;
  stop(): Promise<void>;
}

export interface PrivateEngineOptions {
  cacheDir?: string;
  /** PostgreSQL superuser URL for the full server's databases (default: the stack's). */
  postgresUrl?: string;
  /** One line per start-up phase of the full server; default stderr. */
  progress?: (line: string) => void;
}

/**
 * Starts a private Temporal of the given kind on free loopback ports, ready for sagas (namespace
 * `default` with the order search attributes). `stop()` ends it (and drops the full server's databases).
 */
export async function startPrivateEngine(kind: EngineKind, opts: PrivateEngineOptions = {}): Promise<PrivateEngine> {
  if (kind === 'server') {
    const server = await PrivateTemporalServer.create(opts);
    try {
      await server.start();
    } catch (err) {
      await server.stop().catch(() => {});
      throw err;
    }
    return { kind, address: server.address, stop: () => server.stop() };
  }
  const dev = await PrivateTemporal.create({ cacheDir: opts.cacheDir });
  await dev.start();
  const connection = await Connection.connect({ address: dev.address });
  try {
    const listed = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    const missing = ORDER_SEARCH_ATTRIBUTES.filter((k) => listed.customAttributes?.[k.name] === undefined);
    if (missing.length > 0) {
      await connection.operatorService.addSearchAttributes({
        namespace: 'default',
        searchAttributes: Object.fromEntries(missing.map((k) => [k.name, INDEXED_VALUE_TYPES[k.type] ?? 0])),
      });
    }
  } finally {
    await connection.close();
  }
  return { kind, address: dev.address, stop: () => dev.stop() };
}
