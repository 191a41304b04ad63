/**
 * The OpenAPI 3.1 document of the Orders API, generated from the zod schemas that validate the
 * requests (served at GET /openapi.json; `npm run api -- --openapi` prints it).
 */
import { z } from 'zod';

import {
  cancelAcceptedSchema,
  cancelOrderSchema,
  errorSchema,
  orderCreatedSchema,
  orderViewSchema,
  placeOrderSchema,
} from './order-requests';

const named = { PlaceOrder: placeOrderSchema, CancelOrder: cancelOrderSchema, OrderCreated: orderCreatedSchema };
const more = { CancelAccepted: cancelAcceptedSchema, Order: orderViewSchema, Error: errorSchema };

function components(): Record<string, unknown> {
  const registry = z.registry<{ id?: string }>();
  for (const [id, schema] of Object.entries({ ...named, ...more })) registry.add(schema as z.ZodType, { id });
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    io: 'input',
    uri: (id) => `#/components/schemas/${id}`,
  });
  return Object.fromEntries(
    Object.entries(schemas).map(([id, s]) => [id, { ...s, $schema: undefined, $id: undefined }]),
  );
}

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (id: string, description: string) => ({
  description,
  content: { 'application/json': { schema: ref(id) } },
});
const idempotencyKey = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Retries with the same key get the first answer (header Idempotent-Replayed: true), never a second order.',
  schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,200}$' },
};
const orderId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

const authResponses = {
  '401': json('Error', 'Unauthenticated (authentication on): reason says what was wrong, e.g. TokenExpired'),
  '503': json('Error', 'AuthUnavailable: the signing keys could not be fetched; retry after Retry-After'),
};

/**
 * The document; with `authRequired` every orders operation needs a bearer token (the open
 * routes, /healthz and /openapi.json, never do).
 */
export function buildOpenApiDocument(options: { authRequired?: boolean } = {}): Record<string, unknown> {
  const doc = {
    openapi: '3.1.0',
    info: {
      title: 'kafka-temporal-saga Orders API',
      version: '1.0.0',
      description:
        'Places orders: the order and its order.placed event are written in one transaction; Debezium ' +
        'publishes the event, and the ingress starts the order saga.',
    },
    paths: {
      '/healthz': {
        get: {
          operationId: 'health',
          description: 'Liveness: the process serves requests. Never needs a token.',
          security: [],
          responses: {
            '200': { description: 'Serving', content: { 'application/json': { schema: { type: 'object' } } } },
          },
        },
      },
      '/orders': {
        post: {
          operationId: 'placeOrder',
          parameters: [idempotencyKey],
          requestBody: { required: true, content: { 'application/json': { schema: ref('PlaceOrder') } } },
          responses: {
            '201': json('OrderCreated', 'Order created (or the replayed answer to the same Idempotency-Key)'),
            '400': json('Error', 'Invalid body or header (ValidationFailed with issues, MalformedJson)'),
            '413': json('Error', 'PayloadTooLarge'),
            '415': json('Error', 'UnsupportedMediaType'),
            '422': json('Error', 'IdempotencyKeyReused: the key was used with a different body'),
          },
        },
      },
      '/orders/{id}': {
        get: {
          operationId: 'getOrder',
          parameters: [orderId],
          responses: {
            '200': json('Order', 'The order with its saga status'),
            '404': json('Error', 'OrderNotFound'),
          },
        },
      },
      '/orders/{id}/cancel': {
        post: {
          operationId: 'cancelOrder',
          parameters: [orderId, idempotencyKey],
          requestBody: { required: false, content: { 'application/json': { schema: ref('CancelOrder') } } },
          responses: {
            '202': json('CancelAccepted', 'order.cancelled emitted; the saga stops if payment is not yet captured'),
            '400': json('Error', 'ValidationFailed'),
            '404': json('Error', 'OrderNotFound'),
            '409': json('Error', 'OrderNotCancellable: the order is already CONFIRMED or FAILED'),
            '422': json('Error', 'IdempotencyKeyReused'),
          },
        },
      },
    },
    components: {
      schemas: components(),
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: 'A JWT from the configured identity provider, or one of the configured static tokens',
        },
      },
    },
  };
  if (!options.authRequired) return doc;
  const paths = doc.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>;
  for (const [path, ops] of Object.entries(paths)) {
    if (path !== '/healthz') for (const op of Object.values(ops)) Object.assign(op.responses, authResponses);
  }
  return { ...doc, security: [{ bearerAuth: [] }] };
}
