import { randomUUID } from 'node:crypto';

import type { ConnectorError } from '../../src/cdc/outbox-connector';
import {
  ConnectorFailure,
  ensureConnector,
  ensureOutboxConnector,
  outboxConnectorConfig,
  removeOutboxConnector,
} from '../../src/cdc/outbox-connector';
import { DomainEventDecoder } from '../../src/event-store/domain-event-decoder';
import type { OrderConfirmedV1 } from '../../src/events/generated/event-schemas';
import { TOPICS } from '../../src/events/topics';
import { RegistryClient } from '../../src/kafka/registry-client';
import { cleanOutboxOnce } from '../../src/outbox/outbox-cleaner';
import { OUTBOX_HEADERS } from '../../src/outbox/outbox-constants';
import type { CdcScope } from '../support/cdc-scope';
import { startCdcScope } from '../support/cdc-scope';
import { cdcTargetOf } from '../support/settings';
import { consumeUntil, endpoints, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(180_000);

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

function confirmed(orderId: string, totalMinor = 4_200): OrderConfirmedV1 {
  return {
    eventId: randomUUID(),
    eventType: 'order.confirmed',
    eventVersion: 1,
    occurredAt: Date.now(),
    orderId,
    customerId: 'cust-1',
    totalMinor,
    currency: 'EUR',
  };
}

const header = (h: Record<string, unknown> | undefined, name: string) => (h?.[name] as Buffer | undefined)?.toString();

describe('outbox → Debezium → Kafka', () => {
  let scope: CdcScope;
  beforeAll(async () => {
    scope = await startCdcScope('cdc_outbox');
  });
  afterAll(async () => {
    await scope.stop();
  });

  it('publishes a committed row as the same framed Avro, keyed by aggregate id, with id, type and trace headers; never a rolled-back one', async () => {
    const orderId = uniqueName('ord');
    const rolledBack = confirmed(orderId, 1);
    const committed = confirmed(orderId, 2);
    const db = await scope.admin.connect();
    try {
      await db.query('BEGIN');
      await scope.writer.append(db, 'orders', {
        topic: TOPICS.orderConfirmed,
        aggregateType: 'order',
        event: rolledBack,
      });
      await db.query('ROLLBACK');
      await db.query('BEGIN');
      await scope.writer.append(db, 'orders', {
        topic: TOPICS.orderConfirmed,
        aggregateType: 'order',
        event: committed,
        trace: { traceparent: TRACEPARENT },
      });
      await db.query('COMMIT');
    } finally {
      db.release();
    }
    const topic = scope.writer.destination(TOPICS.orderConfirmed);
    expect(topic).toBe(`${scope.prefix}.order.confirmed`);
    // Same key → same partition: the rolled-back row, had it been published, would come first.
    const messages = await consumeUntil(topic, (m) =>
      m.some((x) => header(x.headers, OUTBOX_HEADERS.eventId) === committed.eventId),
    );
    const ids = messages.map((m) => header(m.headers, OUTBOX_HEADERS.eventId));
    expect(ids).not.toContain(rolledBack.eventId);
    const msg = messages.find((m) => header(m.headers, OUTBOX_HEADERS.eventId) === committed.eventId)!;
    expect(msg.key?.toString()).toBe(orderId);
    expect(header(msg.headers, OUTBOX_HEADERS.eventType)).toBe('order.confirmed');
    expect(header(msg.headers, OUTBOX_HEADERS.traceparent)).toBe(TRACEPARENT);
    const stored = await scope.admin.query<{ payload: Buffer }>('SELECT payload FROM orders.outbox WHERE id = $1', [
      committed.eventId,
    ]);
    expect(msg.value?.equals(stored.rows[0]!.payload)).toBe(true);
    const decoded = await new DomainEventDecoder(new RegistryClient(endpoints.registryUrl)).decode(msg.value);
    expect(decoded.payload).toEqual(committed);
  });

  it('cleans only rows the slot has confirmed: a paused connector keeps them, a resumed one lets them go', async () => {
    const connectorUrl = `${endpoints.connectUrl}/connectors/${scope.options.name}`;
    const clean = { slotName: scope.options.slotName, db: scope.admin, services: ['orders'] as const };
    const event = confirmed(uniqueName('ord'));
    expect((await fetch(`${connectorUrl}/pause`, { method: 'PUT' })).status).toBe(202);
    try {
      // Wait for the task to actually stop streaming, so the slot cannot move past our row.
      await waitUntil(
        'the paused connector task to stop streaming',
        async () => ((await (await fetch(`${connectorUrl}/status`)).json()) as { tasks: { state: string }[] }).tasks,
        (tasks) => tasks.every((t) => t.state === 'PAUSED'),
        { intervalMs: 200 },
      );
      const db = await scope.admin.connect();
      await db.query('BEGIN');
      await scope.writer.append(db, 'orders', { topic: TOPICS.orderConfirmed, aggregateType: 'order', event });
      await db.query('COMMIT');
      db.release();
      const held = await cleanOutboxOnce({ ...clean, waitMs: 3_000 });
      expect(held.confirmed).toBe(false);
      const still = await scope.admin.query('SELECT 1 FROM orders.outbox WHERE id = $1', [event.eventId]);
      expect(still.rowCount).toBe(1);
    } finally {
      await fetch(`${connectorUrl}/resume`, { method: 'PUT' });
    }
    await consumeUntil(scope.writer.destination(TOPICS.orderConfirmed), (m) =>
      m.some((x) => header(x.headers, OUTBOX_HEADERS.eventId) === event.eventId),
    );
    const cleaned = await cleanOutboxOnce({ ...clean, waitMs: 60_000 });
    expect(cleaned.confirmed).toBe(true);
    const gone = await scope.admin.query('SELECT 1 FROM orders.outbox WHERE id = $1', [event.eventId]);
    expect(gone.rowCount).toBe(0);
  });

  it('registers idempotently: unchanged config is left alone, a changed one is updated', async () => {
    const again = await ensureOutboxConnector(cdcTargetOf(), scope.options);
    expect(again.action).toBe('unchanged');
    expect(again.status.tasks.every((t) => t.state === 'RUNNING')).toBe(true);
    const changed = await ensureConnector(endpoints.connectUrl, scope.options.name, {
      ...outboxConnectorConfig(cdcTargetOf().adminUrl, scope.options),
      'heartbeat.interval.ms': '2000',
    });
    expect(changed.action).toBe('updated');
    const back = await ensureOutboxConnector(cdcTargetOf(), scope.options);
    expect(back.action).toBe('updated');
  });

  it('reports a failed task with its cause', async () => {
    // A publication nobody created (the connector must not create one itself): its task fails on start.
    const name = uniqueName('cdc_broken');
    const options = { ...scope.options, name, slotName: name, publicationName: `${name}_missing` };
    try {
      const err = (await ensureConnector(
        endpoints.connectUrl,
        name,
        outboxConnectorConfig(cdcTargetOf().adminUrl, options),
      ).then(
        () => null,
        (e: unknown) => e,
      )) as ConnectorError | null;
      expect(err?.type).toBe(ConnectorFailure.TaskFailed);
      expect(err?.message).toMatch(/task 0 FAILED: .*Publication autocreation is disabled/);
    } finally {
      await removeOutboxConnector(cdcTargetOf(), options);
    }
  });
});
