import pg from 'pg';

import type { DbConfig, DbOwner } from './db-config';
import { DB_OWNERS } from './db-config';

export type ServicePools = Record<DbOwner, pg.Pool>;

/**
 * One pool per schema owner, each logged in as that owner's role, so a bug in one service's SQL
 * cannot reach another service's tables: PostgreSQL refuses it.
 */
export function createServicePools(cfg: DbConfig, poolSize = cfg.poolSize): ServicePools {
  const pools = Object.fromEntries(
    DB_OWNERS.map((owner) => {
      const pool = new pg.Pool({
        connectionString: cfg.owners[owner].url,
        max: poolSize,
        application_name: `kts-${owner}`,
      });
      // An idle client dying (server restart) must not crash the process; the next query reconnects.
      pool.on('error', () => undefined);
      return [owner, pool];
    }),
  ) as ServicePools;
  return pools;
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
