/**
 * Producing order events the way a real producer would: Avro with the registered schemas, Confluent
 * framing, key = orderId, acks=all. Optionally re-sends some events (same eventId) and mixes in bad
 * records, to exercise the ingress's dedupe and dead-lettering.
 */
import type { Kafka, Message } from 'kafkajs';

import { createProducer } from '../config/clients';
import type { EventCodec } from '../events/codec';
import { producerSpan } from '../observability/tracing';
import type { BadRecordKind } from './order-events';
import { BAD_RECORD_KINDS, badRecord, cancelledEvent, placedEvent } from './order-events';

export interface PlaceOptions {
  count: number;
  /** Orders per second; 0 sends as fast as the broker takes them. */
  rate: number;
  version: '1' | '2' | 'mixed';
  /** Fraction of orders whose event is sent a second time (same eventId). */
  duplicates: number;
  /** Fraction of orders followed by a bad record. */
  bad: number;
  badKinds?: readonly BadRecordKind[];
  /** Fraction of orders followed by an order.cancelled. */
  cancels: number;
  placedTopic: string;
  cancelledTopic: string;
  /** Payload limit of the ingress, so `oversized` records exceed it. */
  maxPayloadBytes: number;
  onProgress?: (sent: number) => void;
  random?: () => number;
}

export interface PlaceReport {
  orderIds: string[];
  duplicatesSent: number;
  badSent: Partial<Record<BadRecordKind, number>>;
  cancelsSent: number;
  records: number;
}

/** Sends `count` orders (plus duplicates, bad records and cancels as asked); resolves when all are acked. */
export async function placeOrders(kafka: Kafka, codec: EventCodec, o: PlaceOptions): Promise<PlaceReport> {
  const rnd = o.random ?? Math.random;
  const kinds = o.badKinds ?? BAD_RECORD_KINDS;
  const report: PlaceReport = { orderIds: [], duplicatesSent: 0, badSent: {}, cancelsSent: 0, records: 0 };
  const producer = createProducer(kafka);
  await producer.connect();
  const started = Date.now();
  const batchSize = o.rate > 0 ? Math.max(1, Math.min(200, Math.floor(o.rate / 10))) : 200;
  try {
    for (let sent = 0; sent < o.count;) {
      const placed: Message[] = [];
      const cancelled: Message[] = [];
      const spans: { end(): void }[] = [];
      const n = Math.min(batchSize, o.count - sent);
      for (let i = 0; i < n; i += 1) {
        const version = o.version === 'mixed' ? (rnd() < 0.5 ? 1 : 2) : o.version === '1' ? 1 : 2;
        const event = placedEvent({ version, random: rnd });
        // One trace per order, started here: the traceparent header hands it to the ingress.
        const span = producerSpan('produce order.placed', {
          orderId: event.orderId,
          eventId: event.eventId,
          'messaging.destination.name': o.placedTopic,
        });
        spans.push(span);
        const msg = { key: event.orderId, value: await codec.encode(o.placedTopic, event), headers: span.headers };
        placed.push(msg);
        report.orderIds.push(event.orderId);
        if (rnd() < o.duplicates) {
          placed.push(msg);
          report.duplicatesSent += 1;
        }
        if (rnd() < o.bad) {
          const kind = kinds[Math.floor(rnd() * kinds.length)]!;
          const b = await badRecord(kind, codec, o.placedTopic, o.maxPayloadBytes);
          placed.push({ key: b.key, value: b.value });
          report.badSent[kind] = (report.badSent[kind] ?? 0) + 1;
        }
        if (rnd() < o.cancels) {
          const c = cancelledEvent(event.orderId, event.userId);
          cancelled.push({ key: c.orderId, value: await codec.encode(o.cancelledTopic, c) });
          report.cancelsSent += 1;
        }
      }
      await producer.send({ topic: o.placedTopic, acks: -1, messages: placed });
      if (cancelled.length > 0) await producer.send({ topic: o.cancelledTopic, acks: -1, messages: cancelled });
      for (const s of spans) s.end();
      report.records += placed.length + cancelled.length;
      sent += n;
      o.onProgress?.(sent);
      if (o.rate > 0) {
        const due = started + (sent / o.rate) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
  } finally {
    await producer.disconnect();
  }
  return report;
}
