import { randomUUID } from 'node:crypto';

import pg from 'pg';

import {
  ensureConnector,
  ensurePublication,
  outboxConnectorConfig,
  removeOutboxConnector,
  waitForConnectorRunning,
} from '../../src/cdc/outbox-connector';
import type { EventStoreConsumer } from '../../src/event-store/event-store-consumer';
import { startEventStoreConsumer } from '../../src/event-store/event-store-consumer';
import type { OrderConfirmedV1 } from '../../src/events/generated/event-schemas';
import { TOPICS } from '../../src/events/topics';
import { OUTBOX_HEADERS } from '../../src/outbox/outbox-constants';
import type { CdcScope } from '../support/cdc-scope';
import { startCdcScope } from '../support/cdc-scope';
import { PrivateConnect } from '../support/private-connect';
import { cdcTargetOf, testSettings } from '../support/settings';
import { consumeUntil, endpoints, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(420_000);

const ORDERS = 600;

describe('Connect worker killed with kill -9 during a burst of outbox writes', () => {
  let scope: CdcScope;
  let worker: PrivateConnect;
  let store: EventStoreConsumer;
  const db = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 8 });

  beforeAll(async () => {
    scope = await startCdcScope('cdc_crash', { register: false });
    worker = await PrivateConnect.create(`${scope.prefix}_connect`);
    await worker.start();
    await ensurePublication(endpoints.postgresUrl, scope.options.publicationName, scope.options.tables);
    await ensureConnector(worker.url, scope.options.name, outboxConnectorConfig(cdcTargetOf().adminUrl, scope.options));
    store = await startEventStoreConsumer(testSettings(['eventStore'], scope.prefix));
  });

  afterAll(async () => {
    await store?.stop();
    await removeOutboxConnector(cdcTargetOf(), scope.options, { connectUrl: worker.url }).catch(() => undefined);
    await worker?.stop();
    await scope?.stop();
    await db.end();
  });

  it('delivers every committed outbox row to Kafka after a restart, and the store applies each once', async () => {
    const events: OrderConfirmedV1[] = Array.from({ length: ORDERS }, (_, i) => ({
      eventId: randomUUID(),
      eventType: 'order.confirmed',
      eventVersion: 1,
      occurredAt: Date.now(),
      orderId: uniqueName(`ord-${i}`),
      customerId: 'cust-crash',
      totalMinor: 100 + i,
      currency: 'EUR',
    }));
    let committed = 0;
    const writeAll = async () => {
      // 8 writers, one transaction per event, like 8 busy service instances.
      const queue = [...events];
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let e = queue.shift(); e; e = queue.shift()) {
            const tx = await db.connect();
            await tx.query('BEGIN');
            await scope.writer.append(tx, 'orders', { topic: TOPICS.orderConfirmed, aggregateType: 'order', event: e });
            await tx.query('COMMIT');
            tx.release();
            committed++;
          }
        }),
      );
    };
    const writing = writeAll();
    // Kill mid-burst: some rows are on Kafka, some read but unflushed, some not yet read.
    await waitUntil(
      'a third of the burst committed',
      () => Promise.resolve(committed),
      (n) => n >= ORDERS / 3,
    );
    await worker.kill9();
    const killedAt = committed;
    await writing;
    expect(killedAt).toBeLessThan(ORDERS);

    await worker.start();
    await waitForConnectorRunning(worker.url, scope.options.name, 180_000);

    const topic = scope.writer.destination(TOPICS.orderConfirmed);
    const wanted = new Set(events.map((e) => e.eventId));
    const seen = new Map<string, number>();
    await consumeUntil(
      topic,
      (messages) => {
        const m = messages.at(-1);
        const id = m?.headers?.[OUTBOX_HEADERS.eventId]?.toString();
        if (id) seen.set(id, (seen.get(id) ?? 0) + 1);
        return [...wanted].every((w) => seen.has(w));
      },
      240_000,
    );
    expect([...wanted].filter((w) => !seen.has(w))).toEqual([]);
    const duplicates = [...seen.values()].filter((n) => n > 1).length;
    // Informational: how many rows Kafka got twice because their offsets were not yet flushed.
    console.log(`kill -9 after ${killedAt}/${ORDERS} commits; ${duplicates} duplicate record(s) on the topic`);

    const stored = await waitUntil(
      'every event in the store',
      async () =>
        (
          await db.query<{ n: string; distinct: string }>(
            'SELECT count(*) AS n, count(DISTINCT event_id) AS distinct FROM event_store.events WHERE event_id = ANY($1::uuid[])',
            [[...wanted]],
          )
        ).rows[0]!,
      (r) => Number(r.distinct) >= ORDERS,
      { timeoutMs: 240_000 },
    );
    expect(Number(stored.n)).toBe(ORDERS);
  });
});
