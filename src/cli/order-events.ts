/**
 * Order events for the producer CLI, tests and benchmarks: valid `order.placed` (v1 or v2) and
 * `order.cancelled` events, and a corpus of bad records, each with the dead-letter reason the
 * ingress must give it.
 */
import { randomBytes, randomUUID } from 'node:crypto';

import avro from 'avsc';

import type { EventCodec } from '../events/codec';
import { DecodeFailure } from '../events/codec';
import type { OrderCancelledV1, OrderPlacedV1, OrderPlacedV2 } from '../events/generated/event-schemas';
import { orderPlacedV1Avsc } from '../events/generated/event-schemas';
import { encodeFrame } from '../kafka/wire-format';
import { orderCancelled, orderPlaced, orderPlacedV1 } from '../services/orders/orders-events';

/** The SKUs `orders place` sells by default; the main job stocks them so placed orders can succeed. */
export const CATALOG_SKUS = ['SKU-RED-MUG', 'SKU-TEA-100G', 'SKU-KETTLE', 'SKU-SPOON-SET', 'SKU-TEAPOT', 'SKU-FILTERS'];

export interface PlacedOptions {
  orderId?: string;
  version: 1 | 2;
  isLoyaltyMember?: boolean;
  currency?: string;
  paymentToken?: string;
  /** SKUs to pick lines from (each order's lines have distinct SKUs); a demo catalogue by default. */
  skus?: readonly string[];
  random?: () => number;
}

/** A valid order.placed event: 1-3 lines, total = sum of lines, in minor units. */
export function placedEvent(opts: PlacedOptions): OrderPlacedV1 | OrderPlacedV2 {
  const rnd = opts.random ?? Math.random;
  const skus = opts.skus ?? CATALOG_SKUS;
  const lines = 1 + Math.floor(rnd() * Math.min(3, skus.length));
  const first = Math.floor(rnd() * skus.length);
  const items = Array.from({ length: lines }, (_, i) => ({
    sku: skus[(first + i) % skus.length]!,
    quantity: 1 + Math.floor(rnd() * 3),
    unitPriceMinor: 100 + Math.floor(rnd() * 5000),
  }));
  const facts = {
    orderId: opts.orderId ?? `ord-${randomUUID()}`,
    userId: `user-${1 + Math.floor(rnd() * 1000)}`,
    items,
    totalMinor: items.reduce((sum, l) => sum + l.quantity * l.unitPriceMinor, 0),
    currency: opts.currency ?? 'EUR',
    paymentToken: opts.paymentToken ?? 'tok_visa_4242',
  };
  if (opts.version === 1) return orderPlacedV1(facts).event;
  return orderPlaced({ ...facts, isLoyaltyMember: opts.isLoyaltyMember ?? rnd() < 0.3 }).event;
}

/** A valid order.cancelled event for `orderId`. */
export function cancelledEvent(orderId: string, userId: string, reason = 'changed my mind'): OrderCancelledV1 {
  return orderCancelled({ orderId, userId, reason }).event;
}

/** Kinds of bad record the CLI can inject and the test corpus covers. */
export const BAD_RECORD_KINDS = [
  'empty',
  'truncated',
  'wrong-magic',
  'unknown-schema-id',
  'random-body',
  'random-bytes',
  'invalid-content',
  'unknown-version',
  'oversized',
  'key-mismatch',
] as const;
export type BadRecordKind = (typeof BAD_RECORD_KINDS)[number];

export interface BadRecord {
  kind: BadRecordKind;
  key: string;
  value: Buffer | null;
  /** Dead-letter reasons the ingress may give; exactly one except for random input. */
  expectedReasons: string[];
}

// Far above any id the registry hands out in a test run.
const UNKNOWN_SCHEMA_ID = 2_000_000_000;

/** One bad record of the given kind for `topic` (an order.placed topic). */
export async function badRecord(
  kind: BadRecordKind,
  codec: EventCodec,
  topic: string,
  maxPayloadBytes: number,
): Promise<BadRecord> {
  const good = placedEvent({ version: 1 });
  const key = good.orderId;
  const valid = await codec.encode(topic, good);
  const one = (value: Buffer | null, reason: string): BadRecord => ({ kind, key, value, expectedReasons: [reason] });
  switch (kind) {
    case 'empty':
      return one(null, DecodeFailure.EmptyPayload);
    case 'truncated':
      return one(valid.subarray(0, 3), DecodeFailure.TruncatedPayload);
    case 'wrong-magic':
      return one(Buffer.concat([Buffer.from([1]), valid.subarray(1)]), DecodeFailure.WrongMagicByte);
    case 'unknown-schema-id':
      return one(encodeFrame(UNKNOWN_SCHEMA_ID, valid.subarray(5)), DecodeFailure.UnknownSchemaId);
    case 'random-body': {
      // A registered schema id with garbage after it: fails in Avro, or decodes into nonsense.
      const id = valid.readUInt32BE(1);
      return {
        kind,
        key,
        value: encodeFrame(id, randomBytes(8 + Math.floor(Math.random() * 200))),
        expectedReasons: [
          DecodeFailure.UndecodableBody,
          DecodeFailure.WrongEventType,
          DecodeFailure.UnknownEventVersion,
          DecodeFailure.InvalidContent,
        ],
      };
    }
    case 'random-bytes': {
      const value = randomBytes(1 + Math.floor(Math.random() * 300));
      return { kind, key, value, expectedReasons: Object.values(DecodeFailure) };
    }
    case 'invalid-content':
      return one(await codec.encode(topic, { ...good, totalMinor: good.totalMinor + 1 }), DecodeFailure.InvalidContent);
    case 'unknown-version': {
      // Written with the registered v1 schema, but claiming a version this ingress has never heard of.
      const v1 = avro.Type.forSchema(orderPlacedV1Avsc as unknown as avro.Schema);
      return one(
        encodeFrame(valid.readUInt32BE(1), v1.toBuffer({ ...good, eventVersion: 9 })),
        DecodeFailure.UnknownEventVersion,
      );
    }
    case 'oversized':
      return one(Buffer.concat([valid, Buffer.alloc(maxPayloadBytes)]), DecodeFailure.PayloadTooLarge);
    case 'key-mismatch':
      return { kind, key: `not-${key}`, value: valid, expectedReasons: ['KeyMismatch'] };
  }
}
