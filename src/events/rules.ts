/**
 * Business rules and upcasting for the events the ingress consumes. Structure comes from the
 * generated validators (derived from `schemas/*.avsc`); this module only adds what Avro cannot say
 * (non-empty items, positive quantities, totals that add up, known currencies) and maps older
 * versions onto the latest one.
 */
import type { z } from 'zod';

import type {
  OrderCancelledV1,
  OrderConfirmedV1,
  OrderConfirmedV2,
  OrderPlacedV1,
  OrderPlacedV2,
} from './generated/event-schemas';
import {
  orderCancelledV1Schema,
  orderConfirmedV1Schema,
  orderConfirmedV2Schema,
  orderPlacedV1Schema,
  orderPlacedV2Schema,
} from './generated/event-schemas';

/**
 * ISO 4217 codes the shop accepts, with their minor-unit exponent (JPY has none, so 1 JPY = 1 minor
 * unit). Anything else is refused at the door rather than failing deep inside the saga.
 */
export const CURRENCY_EXPONENTS: Readonly<Record<string, number>> = {
  EUR: 2,
  USD: 2,
  GBP: 2,
  CHF: 2,
  SEK: 2,
  NOK: 2,
  DKK: 2,
  PLN: 2,
  CZK: 2,
  CAD: 2,
  AUD: 2,
  JPY: 0,
};

/** Upper bound of a single order's total; keeps sums far below 2^53 so integer maths stays exact. */
export const MAX_ORDER_TOTAL_MINOR = 10_000_000_000_00;
export const MAX_ORDER_LINES = 500;

type PlacedShape = Pick<OrderPlacedV1, 'orderId' | 'userId' | 'items' | 'totalMinor' | 'currency' | 'paymentToken'>;

/** Adds one business-rule issue. Module level, not a closure per call: ingress validates every record. */
function addIssue(ctx: z.RefinementCtx, path: (string | number)[], message: string): void {
  ctx.addIssue({ code: 'custom', path, message });
}

function checkPlaced(e: PlacedShape, ctx: z.RefinementCtx): void {
  if (e.orderId.trim() === '') addIssue(ctx, ['orderId'], 'must not be empty');
  if (e.userId.trim() === '') addIssue(ctx, ['userId'], 'must not be empty');
  if (e.paymentToken.trim() === '') addIssue(ctx, ['paymentToken'], 'must not be empty');
  if (!(e.currency in CURRENCY_EXPONENTS))
    addIssue(ctx, ['currency'], `unknown currency ${JSON.stringify(e.currency)}`);
  if (e.items.length === 0) addIssue(ctx, ['items'], 'an order needs at least one line');
  if (e.items.length > MAX_ORDER_LINES) addIssue(ctx, ['items'], `at most ${MAX_ORDER_LINES} lines`);
  let sum = 0;
  for (let i = 0; i < e.items.length; i += 1) {
    const line = e.items[i]!;
    if (line.sku.trim() === '') addIssue(ctx, ['items', i, 'sku'], 'must not be empty');
    if (line.quantity <= 0) addIssue(ctx, ['items', i, 'quantity'], `must be positive, got ${line.quantity}`);
    if (line.unitPriceMinor < 0) addIssue(ctx, ['items', i, 'unitPriceMinor'], 'must not be negative');
    sum += line.quantity * line.unitPriceMinor;
  }
  if (e.totalMinor <= 0 || e.totalMinor > MAX_ORDER_TOTAL_MINOR) {
    addIssue(ctx, ['totalMinor'], `must be in 1..${MAX_ORDER_TOTAL_MINOR}`);
  } else if (sum !== e.totalMinor) {
    addIssue(ctx, ['totalMinor'], `is ${e.totalMinor} but the lines add up to ${sum}`);
  }
}

/** Latest version of `order.placed`: what the rest of the ingress works with. */
export type OrderPlaced = OrderPlacedV2;
export const LATEST_ORDER_PLACED_VERSION = 2;
export type OrderCancelled = OrderCancelledV1;

type ConfirmedShape = Pick<OrderConfirmedV1, 'orderId' | 'customerId' | 'totalMinor' | 'currency'>;

/** What a confirmed order must hold for a consumer to act on it (the loyalty service computes points from it). */
function checkConfirmed(e: ConfirmedShape, ctx: z.RefinementCtx): void {
  if (e.orderId.trim() === '') addIssue(ctx, ['orderId'], 'must not be empty');
  if (e.customerId.trim() === '') addIssue(ctx, ['customerId'], 'must not be empty');
  if (!(e.currency in CURRENCY_EXPONENTS))
    addIssue(ctx, ['currency'], `unknown currency ${JSON.stringify(e.currency)}`);
  if (e.totalMinor < 0 || e.totalMinor > MAX_ORDER_TOTAL_MINOR) {
    addIssue(ctx, ['totalMinor'], `must be in 0..${MAX_ORDER_TOTAL_MINOR}`);
  }
}

/** Latest version of `order.confirmed`: what its consumers work with. */
export type OrderConfirmed = OrderConfirmedV2;
export const LATEST_ORDER_CONFIRMED_VERSION = 2;

/** Validators for each known version: generated structure plus the business rules. */
export const INGRESS_VALIDATORS = {
  'order.placed': {
    1: orderPlacedV1Schema.superRefine(checkPlaced),
    2: orderPlacedV2Schema.superRefine(checkPlaced),
  },
  'order.cancelled': {
    1: orderCancelledV1Schema.superRefine((e, ctx) => {
      if (e.orderId.trim() === '') ctx.addIssue({ code: 'custom', path: ['orderId'], message: 'must not be empty' });
    }),
  },
  'order.confirmed': {
    1: orderConfirmedV1Schema.superRefine(checkConfirmed),
    2: orderConfirmedV2Schema.superRefine(checkConfirmed),
  },
} as const;

/** The event types the ingress consumes (the validators above also serve other consumers). */
export type IngressEventType = 'order.placed' | 'order.cancelled';

/** A consumed event after validation and upcasting, tagged with the version it was written in. */
export type IngressEvent =
  | { eventType: 'order.placed'; sourceVersion: number; event: OrderPlaced }
  | { eventType: 'order.cancelled'; sourceVersion: number; event: OrderCancelled };

/** v1 → v2: v1 producers knew nothing of loyalty, so nobody was a member. */
export function upcastOrderPlaced(e: OrderPlacedV1 | OrderPlacedV2): OrderPlaced {
  if (e.eventVersion === 2) return e;
  return { ...e, eventVersion: 2, isLoyaltyMember: false };
}

/** v1 → v2: v1 writers did not carry membership, so the order earns no points (as for order.placed v1). */
export function upcastOrderConfirmed(e: OrderConfirmedV1 | OrderConfirmedV2): OrderConfirmed {
  if (e.eventVersion === 2) return e;
  return { ...e, eventVersion: 2, isLoyaltyMember: false };
}

/** One-line summary of zod issues for a dead-letter header: `items.0.quantity: must be positive`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 10)
    .map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`)
    .join('; ');
}
