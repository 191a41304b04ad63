/**
 * The main job's demo batch: a handful of orders, each designed to take one path through the system,
 * sent to Kafka exactly as an external producer would (Avro via the registry, key = orderId).
 */
import { randomUUID } from 'node:crypto';

import type { Kafka, Message } from 'kafkajs';
import type pg from 'pg';

import type { BadRecordKind } from '../cli/order-events';
import { cancelledEvent, CATALOG_SKUS, placedEvent } from '../cli/order-events';
import { badRecord } from '../cli/order-events';
import { createProducer } from '../config/clients';
import type { EventCodec } from '../events/codec';
import { TOPICS } from '../events/topics';
import { producerSpan } from '../observability/tracing';
import { pointsFor } from '../services/loyalty/loyalty-events';
import { DECLINED_CARD_TOKEN } from '../simulated-external/card-gateway';

/** What the demo expects each order to end as; the summary compares it with what really happened. */
export type DemoKind = 'happy' | 'declined' | 'out-of-stock' | 'cancelled';

export interface DemoOrder {
  orderId: string;
  kind: DemoKind;
  occurredAt: number;
  /** Whether the order's event says its customer is a loyalty member (v2 orders are; v1 cannot say). */
  loyaltyMember: boolean;
  /** Points the loyalty service should award once the saga confirms it (pointsFor; 0 unless it is confirmed). */
  expectedPoints: number;
}

export interface DemoBatch {
  orders: DemoOrder[];
  /** Bad records sent to order.placed: each must end up in the dead-letter topic. */
  malformed: BadRecordKind[];
  /** Orders whose event was sent twice (same eventId): the copy must start nothing. */
  duplicated: string[];
}

/** SKUs the demo sells; one of them is always sold out so an order fails on stock. */
export const DEMO_SKUS = { plenty: 'DEMO-ESPRESSO-CUP', soldOut: 'DEMO-GOLDEN-KETTLE' } as const;

/**
 * Makes sure the demo's SKUs exist (lots of one, none of the other) and that the catalog `orders place`
 * sells from is stocked, so orders placed by hand afterwards can succeed. Writes the inventory
 * service's own table through its own role.
 */
export async function seedDemoStock(inventory: pg.Pool): Promise<void> {
  const plenty = [DEMO_SKUS.plenty, ...CATALOG_SKUS];
  await inventory.query(
    `INSERT INTO inventory.stock (sku, available)
     SELECT sku, 1000000 FROM unnest($1::text[]) AS sku
     UNION ALL SELECT $2, 0
     ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available, updated_at = now()`,
    [plenty, DEMO_SKUS.soldOut],
  );
}

export interface DemoPlan {
  happy: number;
  declined: number;
  outOfStock: number;
  cancelled: number;
  duplicates: number;
  malformed: readonly BadRecordKind[];
}

export const DEFAULT_DEMO_PLAN: DemoPlan = {
  happy: 10,
  declined: 3,
  outOfStock: 2,
  cancelled: 2,
  duplicates: 3,
  malformed: ['random-bytes', 'wrong-magic', 'invalid-content'],
};

/**
 * Sends the demo batch. Kinds are interleaved so the Web UI shows a realistic mix; cancels go out
 * right after their order (the saga waits for the card gateway, so the cancel lands mid-saga).
 */
export async function sendDemoBatch(
  kafka: Kafka,
  codec: EventCodec,
  plan: DemoPlan,
  topics: { placed: string; cancelled: string } = { placed: TOPICS.orderPlaced, cancelled: TOPICS.orderCancelled },
): Promise<DemoBatch> {
  const kinds: DemoKind[] = [
    ...Array<DemoKind>(plan.happy).fill('happy'),
    ...Array<DemoKind>(plan.declined).fill('declined'),
    ...Array<DemoKind>(plan.outOfStock).fill('out-of-stock'),
    ...Array<DemoKind>(plan.cancelled).fill('cancelled'),
  ];
  // Spread the special cases among the happy ones.
  kinds.sort((a, b) => (a === b ? 0 : a === 'happy' ? -1 : 1));
  const interleaved = kinds.map((_, i) => kinds[(i * 7) % kinds.length] as DemoKind);
  const producer = createProducer(kafka);
  await producer.connect();
  const batch: DemoBatch = { orders: [], malformed: [], duplicated: [] };
  try {
    const placed: Message[] = [];
    const cancels: Message[] = [];
    const spans: { end(): void }[] = [];
    for (const [i, kind] of interleaved.entries()) {
      const version = i % 2 === 0 ? 2 : 1;
      // Every v2 order is a loyalty member's (a v1 event cannot say, so the upcast makes it a non-member):
      // the summary then shows members earning points and non-members earning none.
      const event = placedEvent({
        version,
        orderId: `demo-${randomUUID().slice(0, 8)}`,
        paymentToken: kind === 'declined' ? DECLINED_CARD_TOKEN : undefined,
        isLoyaltyMember: version === 2,
      });
      const loyaltyMember = 'isLoyaltyMember' in event && event.isLoyaltyMember;
      const sku = kind === 'out-of-stock' ? DEMO_SKUS.soldOut : DEMO_SKUS.plenty;
      event.items = event.items.map((line) => ({ ...line, sku }));
      // One trace per order, started here: the traceparent header hands it to the ingress.
      const span = producerSpan('produce order.placed', {
        orderId: event.orderId,
        eventId: event.eventId,
        'messaging.destination.name': topics.placed,
      });
      spans.push(span);
      const message = {
        key: event.orderId,
        value: await codec.encode(topics.placed, event),
        headers: span.headers,
      };
      placed.push(message);
      batch.orders.push({
        orderId: event.orderId,
        kind,
        occurredAt: event.occurredAt,
        loyaltyMember,
        // Only a confirmed order earns: the happy ones (the others fail before confirmOrder).
        expectedPoints: kind === 'happy' ? pointsFor({ ...event, isLoyaltyMember: loyaltyMember }) : 0,
      });
      if (batch.duplicated.length < plan.duplicates && kind === 'happy') {
        placed.push(message);
        batch.duplicated.push(event.orderId);
      }
      if (kind === 'cancelled') {
        const c = cancelledEvent(event.orderId, event.userId, 'changed my mind (demo)');
        cancels.push({ key: c.orderId, value: await codec.encode(topics.cancelled, c) });
      }
    }
    for (const kind of plan.malformed) {
      const bad = await badRecord(kind, codec, topics.placed, 256 * 1024);
      placed.push({ key: bad.key, value: bad.value });
      batch.malformed.push(kind);
    }
    await producer.send({ topic: topics.placed, acks: -1, messages: placed });
    if (cancels.length > 0) await producer.send({ topic: topics.cancelled, acks: -1, messages: cancels });
    for (const s of spans) s.end();
  } finally {
    await producer.disconnect();
  }
  return batch;
}
