import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import pg from 'pg';
import pino from 'pino';

import type { DbConfig } from '../../src/db/db-config';
import { dbConfigFromSettings } from '../../src/db/db-config';
import { migrateAll } from '../../src/db/migrate';
import type { ServicePools } from '../../src/db/pools';
import { closeServicePools, createServicePools } from '../../src/db/pools';
import { DomainEventDecoder } from '../../src/event-store/domain-event-decoder';
import { EventCodec } from '../../src/events/codec';
import { RegistryClient } from '../../src/kafka/registry-client';
import type { OutboxService } from '../../src/outbox/outbox-constants';
import { OutboxWriter } from '../../src/outbox/outbox-writer';
import type { Notice, NotificationChannel } from '../../src/simulated-external/notification-channel';
import { allSettings } from './settings';
import { endpoints, uniqueName } from './stack';

export interface DbHarness {
  cfg: DbConfig;
  pools: ServicePools;
  /** Superuser pool, for assertions that read across schemas (tests only). */
  admin: pg.Pool;
  /**
   * The outbox writer to give the activities: its topic prefix is this harness's own, which no
   * connector publishes, so its rows stay put for {@link outboxEvents} to read.
   */
  outbox: OutboxWriter;
  close(): Promise<void>;
}

/** Migrates (idempotently, so a fresh machine needs no manual step) and opens per-service pools. */
export async function openDb(poolSize = 5): Promise<DbHarness> {
  const cfg = dbConfigFromSettings(allSettings.roles.provision, allSettings.postgres);
  await migrateAll(cfg);
  const pools = createServicePools(cfg, poolSize);
  const admin = new pg.Pool({ connectionString: cfg.adminUrl, max: 3 });
  const registry = new RegistryClient(endpoints.registryUrl);
  return {
    cfg,
    pools,
    admin,
    outbox: new OutboxWriter({ codec: new EventCodec(registry), topicPrefix: uniqueName('act-outbox') }),
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

export interface OutboxEvent {
  /** Outbox columns, as the Outbox Event Router reads them. */
  topic: string;
  aggregateType: string;
  aggregateId: string;
  type: string;
  /** The payload decoded the way the event store decodes it: Confluent framing, writer schema by id. */
  event: Record<string, unknown>;
}

const outboxDecoder = new DomainEventDecoder(new RegistryClient(endpoints.registryUrl));

/**
 * The outbox rows `db.outbox` wrote to `service`'s outbox for `orderId`, oldest first, each payload
 * decoded through the registry so a test sees exactly what Kafka consumers will.
 */
export async function outboxEvents(db: DbHarness, service: OutboxService, orderId: string): Promise<OutboxEvent[]> {
  const { rows } = await db.admin.query<{
    topic: string;
    aggregatetype: string;
    aggregateid: string;
    type: string;
    payload: Buffer;
  }>(
    `SELECT topic, aggregatetype, aggregateid, type, payload FROM ${service}.outbox
     WHERE aggregateid = $1 AND topic LIKE $2 ORDER BY created_at, id`,
    [orderId, `${db.outbox.topicPrefix}.%`],
  );
  const out: OutboxEvent[] = [];
  for (const r of rows) {
    const decoded = await outboxDecoder.decode(r.payload);
    out.push({
      topic: r.topic,
      aggregateType: r.aggregatetype,
      aggregateId: r.aggregateid,
      type: r.type,
      event: decoded.payload,
    });
  }
  return out;
}
