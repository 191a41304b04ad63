/**
 * Request and response shapes of the Orders HTTP API, as zod schemas: they validate requests and
 * are also the source of the OpenAPI document (see openapi.ts), so the two cannot drift apart.
 * The business limits are the ingress's own (src/events/rules.ts): an order the API accepts is
 * never dead-lettered downstream.
 */
import { createHash } from 'node:crypto';

import { z } from 'zod';

import { CURRENCY_EXPONENTS, MAX_ORDER_LINES, MAX_ORDER_TOTAL_MINOR } from '../events/rules';

const CURRENCIES = Object.keys(CURRENCY_EXPONENTS) as [string, ...string[]];
const text = (max: number) => z.string().trim().min(1, 'must not be empty').max(max);

export const orderLineSchema = z
  .object({
    sku: text(200).meta({ example: 'SKU-RED-MUG' }),
    quantity: z.int().min(1).max(1_000_000),
    unitPriceMinor: z.int().min(0).max(MAX_ORDER_TOTAL_MINOR).meta({ description: 'Price of one unit in minor units' }),
  })
  .strict();

export const placeOrderSchema = z
  .object({
    customerId: text(200),
    currency: z.enum(CURRENCIES).meta({ description: 'ISO 4217 code' }),
    items: z.array(orderLineSchema).min(1, 'an order needs at least one line').max(MAX_ORDER_LINES),
    paymentToken: text(200).meta({ description: 'Tokenised card reference; never a card number' }),
    isLoyaltyMember: z.boolean().default(false),
  })
  .strict()
  .superRefine((o, ctx) => {
    const total = o.items.reduce((sum, i) => sum + i.quantity * i.unitPriceMinor, 0);
    if (total <= 0 || total > MAX_ORDER_TOTAL_MINOR) {
      ctx.addIssue({ code: 'custom', path: ['items'], message: `order total must be in 1..${MAX_ORDER_TOTAL_MINOR}` });
    }
  })
  .meta({ id: 'PlaceOrder' });
export type PlaceOrderRequest = z.infer<typeof placeOrderSchema>;

export const cancelOrderSchema = z
  .object({ reason: text(500).default('cancelled by the customer') })
  .strict()
  .meta({ id: 'CancelOrder' });
export type CancelOrderRequest = z.infer<typeof cancelOrderSchema>;

/** `Idempotency-Key`: printable ASCII, like the keys card gateways accept. */
export const idempotencyKeySchema = z
  .string()
  .regex(/^[\x21-\x7e]{1,200}$/, 'must be 1-200 printable ASCII characters without spaces');

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
/** Set on a response that repeats the answer to an earlier request with the same key. */
export const IDEMPOTENT_REPLAY_HEADER = 'idempotent-replayed';

/** Error codes of the API's 4xx answers (the `error` field): clients match on these. */
export const ApiError = {
  ValidationFailed: 'ValidationFailed',
  MalformedJson: 'MalformedJson',
  UnsupportedMediaType: 'UnsupportedMediaType',
  PayloadTooLarge: 'PayloadTooLarge',
  OrderNotFound: 'OrderNotFound',
  OrderNotCancellable: 'OrderNotCancellable',
  IdempotencyKeyReused: 'IdempotencyKeyReused',
  NotFound: 'NotFound',
  /** 401: no valid bearer token (auth on); `reason` says what was wrong (an AuthFailure). */
  Unauthenticated: 'Unauthenticated',
  /** 503: the token could not be checked (the JWKS is unreachable); retry later. */
  AuthUnavailable: 'AuthUnavailable',
  Internal: 'Internal',
} as const;
export type ApiError = (typeof ApiError)[keyof typeof ApiError];

export const errorSchema = z
  .object({
    error: z.enum(Object.values(ApiError) as [ApiError, ...ApiError[]]),
    message: z.string(),
    reason: z.string().optional().meta({ description: 'For 401 and 503: the AuthFailure, e.g. TokenExpired' }),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof errorSchema>;

export const orderCreatedSchema = z
  .object({
    orderId: z.string(),
    status: z.literal('PENDING'),
    totalMinor: z.int(),
    currency: z.string(),
    eventId: z.string().meta({ description: 'eventId of the order.placed event' }),
  })
  .meta({ id: 'OrderCreated' });
export type OrderCreated = z.infer<typeof orderCreatedSchema>;

export const cancelAcceptedSchema = z
  .object({ orderId: z.string(), cancelRequested: z.literal(true), eventId: z.string() })
  .meta({ id: 'CancelAccepted' });
export type CancelAccepted = z.infer<typeof cancelAcceptedSchema>;

export const orderViewSchema = z
  .object({
    orderId: z.string(),
    customerId: z.string(),
    status: z.enum(['PENDING', 'CONFIRMED', 'FAILED']),
    failureReason: z.string().nullable(),
    currency: z.string(),
    totalMinor: z.int(),
    items: z.array(z.object({ sku: z.string(), quantity: z.int(), unitPriceMinor: z.int() })),
    createdAt: z.string(),
    updatedAt: z.string(),
    saga: z
      .object({
        workflowId: z.string(),
        workflowStatus: z.string().meta({ description: 'Temporal status: RUNNING, COMPLETED, FAILED, …' }),
        state: z.string().nullable().meta({ description: 'SagaState from the sagaStatus query or result' }),
        currentStep: z.string().nullable(),
        completedSteps: z.array(z.string()),
        compensationsRun: z.array(z.string()),
      })
      .nullable()
      .meta({ description: 'null until the saga has started (the event is still on its way)' }),
  })
  .meta({ id: 'Order' });
export type OrderView = z.infer<typeof orderViewSchema>;

/** Issues as `{ path: 'items.0.quantity', message }`, for 400 answers. */
export function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));
}

/** Hash of a parsed request: the same key with a different request is refused, not replayed. */
export function requestHash(operation: string, body: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  return createHash('sha256')
    .update(JSON.stringify([operation, canonical(body)]))
    .digest('hex');
}
