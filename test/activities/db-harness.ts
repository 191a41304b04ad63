import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import pg from 'pg';
import pino from 'pino';

import type { DbConfig } from '../../src/db/db-config';
import { loadDbConfig } from '../../src/db/db-config';
import { migrateAll } from '../../src/db/migrate';
import type { ServicePools } from '../../src/db/pools';
import { closeServicePools, createServicePools } from '../../src/db/pools';
import type { Notice, NotificationChannel } from '../../src/services/notification-channel';

export interface DbHarness {
  cfg: DbConfig;
  pools: ServicePools;
  /** Superuser pool, for assertions that read across schemas (tests only). */
  admin: pg.Pool;
  close(): Promise<void>;
}

/** Migrates (idempotently, so a fresh machine needs no manual step) and opens per-service pools. */
export async function openDb(poolSize = 5): Promise<DbHarness> {
  const cfg = loadDbConfig();
  await migrateAll(cfg);
  const pools = createServicePools(cfg, poolSize);
  const admin = new pg.Pool({ connectionString: cfg.adminUrl, max: 3 });
  return {
    cfg,
    pools,
    admin,
    async close() {
      await closeServicePools(pools);
      await admin.end();
    },
  };
}

// Expected failures are the point of many tests; the SDK's per-failure warning would drown the report.
const activityLogger = new DefaultLogger('ERROR');

/** Runs an activity the way a worker would, in an activity context. */
export function runActivity<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return new MockActivityEnvironment(undefined, { logger: activityLogger }).run(fn, ...args);
}

/** Failure `type` of a rejected promise (ApplicationFailure), or the error's name for anything else. */
export async function failureOf(
  p: Promise<unknown>,
): Promise<{ type: string; nonRetryable: boolean; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { type?: string; name?: string; nonRetryable?: boolean; message?: string };
    return { type: e.type ?? e.name ?? 'unknown', nonRetryable: e.nonRetryable ?? false, message: e.message ?? '' };
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** A channel that remembers what it delivered, so tests can count deliveries. */
export function recordingChannel(): NotificationChannel & { delivered: Notice[] } {
  const delivered: Notice[] = [];
  return {
    name: 'recording',
    delivered,
    deliver(notice) {
      delivered.push(notice);
      return Promise.resolve();
    },
  };
}

export const quietLogger = pino({ level: process.env.LOG_LEVEL ?? 'warn' });

export async function stockOf(db: DbHarness, sku: string): Promise<number | undefined> {
  const { rows } = await db.admin.query<{ available: number }>('SELECT available FROM inventory.stock WHERE sku = $1', [
    sku,
  ]);
  return rows[0]?.available;
}

export async function putStock(db: DbHarness, sku: string, available: number): Promise<void> {
  await db.pools.inventory.query(
    `INSERT INTO inventory.stock (sku, available) VALUES ($1, $2)
     ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available`,
    [sku, available],
  );
}
