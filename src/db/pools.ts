import type pg from 'pg';

import { createPgPool } from '../config/clients';
import type { DbConfig, DbOwner } from './db-config';
import { DB_OWNERS } from './db-config';

export type ServicePools = Record<DbOwner, pg.Pool>;

/**
 * One pool per schema owner, each logged in as that owner's role, so a bug in one service's SQL
 * cannot reach another service's tables: PostgreSQL refuses it. For provisioning and tests, which
 * hold every role; a deployed worker opens only its own role's pool.
 */
export function createServicePools(cfg: DbConfig, poolSize = cfg.poolSize): ServicePools {
  return Object.fromEntries(
    DB_OWNERS.map((owner) => [
      owner,
      createPgPool(cfg.owners[owner].url, { ssl: cfg.ssl, poolSize }, { applicationName: `kts-${owner}` }),
    ]),
  ) as ServicePools;
}

export async function closeServicePools(pools: ServicePools): Promise<void> {
  await Promise.all(Object.values(pools).map((p) => p.end()));
}

/** Reads a PostgreSQL bigint (returned as text by pg) as a number, refusing anything inexact. */
export function toSafeInteger(value: unknown, what: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`${what} is not a safe integer: ${String(value)}`);
  return n;
}
