/**
 * The Orders HTTP API on Fastify: small, maintained, with the request-size limit, content-type
 * checks and JSON parsing built in, and `inject()` for tests. Validation is zod (the same schemas
 * produce the OpenAPI document), so Fastify's own JSON-schema validation is not used.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import Fastify from 'fastify';
import type { z } from 'zod';

import { contextFromKafkaHeaders, inSpan } from '../observability/tracing';
import type { Authenticator, Principal } from './auth';
import { buildOpenApiDocument } from './openapi';
import type { ErrorBody, OrderView } from './order-requests';
import {
  ApiError,
  cancelOrderSchema,
  IDEMPOTENCY_KEY_HEADER,
  idempotencyKeySchema,
  IDEMPOTENT_REPLAY_HEADER,
  issuesOf,
  placeOrderSchema,
} from './order-requests';
import type { OrdersStore, WriteOutcome } from './orders-store';
import type { SagaStatusReader } from './saga-status';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who sent the request (null when authentication is off, or on an open route). */
    principal: Principal | null;
  }
}

/**
 * Routes that answer without a token. GET /healthz is what load balancers and orchestrators probe,
 * and they carry no credentials; it says only that the process serves. GET /openapi.json describes
 * the API (including that it wants a bearer token) and holds no data. Prometheus metrics are served
 * by a separate listener (src/observability/metrics.ts), never by this one.
 */
export const OPEN_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/openapi.json']);

export interface ApiDeps {
  store: OrdersStore;
  saga: SagaStatusReader;
  /** Checks the bearer token of every request except OPEN_ROUTES; absent = off (the local stack). */
  auth?: Authenticator;
  /** Largest accepted request body; larger ones get 413 before they are parsed. */
  bodyLimitBytes: number;
  /** Told about every 500 (the client only sees `Internal`). */
  onInternalError?: (err: unknown) => void;
}

function fail(reply: FastifyReply, status: number, error: ApiError, message: string, issues?: ErrorBody['issues']) {
  const body: ErrorBody = issues ? { error, message, issues } : { error, message };
  return reply.code(status).send(body);
}

function parse<T extends z.ZodType>(
  schema: T,
  value: unknown,
  reply: FastifyReply,
): { ok: true; data: z.infer<T> } | { ok: false } {
  const r = schema.safeParse(value);
  if (r.success) return { ok: true, data: r.data };
  void fail(reply, 400, ApiError.ValidationFailed, 'the request is invalid', issuesOf(r.error));
  return { ok: false };
}

/** The optional Idempotency-Key header; `false` when present but invalid (a 400 was sent). */
function idempotencyKey(headers: Record<string, unknown>, reply: FastifyReply): string | undefined | false {
  const raw = headers[IDEMPOTENCY_KEY_HEADER];
  if (raw === undefined) return undefined;
  const r = idempotencyKeySchema.safeParse(raw);
  if (r.success) return r.data;
  void fail(reply, 400, ApiError.ValidationFailed, 'the Idempotency-Key header is invalid', [
    { path: 'header.Idempotency-Key', message: r.error.issues[0]?.message ?? 'invalid' },
  ]);
  return false;
}

function send<T>(reply: FastifyReply, orderId: string, outcome: WriteOutcome<T>) {
  switch (outcome.kind) {
    case 'done':
      if (outcome.replayed) void reply.header(IDEMPOTENT_REPLAY_HEADER, 'true');
      return reply.code(outcome.status).send(outcome.body);
    case 'keyReused':
      return fail(reply, 422, ApiError.IdempotencyKeyReused, 'this Idempotency-Key was used with a different request');
    case 'notFound':
      return fail(reply, 404, ApiError.OrderNotFound, `order ${orderId} does not exist`);
    case 'notCancellable':
      return fail(reply, 409, ApiError.OrderNotCancellable, `order ${orderId} is ${outcome.status}`);
  }
}

/** Builds the API (not listening yet: call `listen`, or `inject` in tests). */
export function buildApiServer(deps: ApiDeps): FastifyInstance {
  const app = Fastify({ bodyLimit: deps.bodyLimitBytes, logger: false });
  // JSON only: a text/plain body would otherwise reach validation as a string and get a vaguer 400.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err: { code?: string; statusCode?: number; message: string }, _req, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return fail(reply, 413, ApiError.PayloadTooLarge, `the body exceeds ${deps.bodyLimitBytes} bytes`);
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return fail(reply, 415, ApiError.UnsupportedMediaType, 'send the body as application/json');
    }
    if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return fail(reply, 400, ApiError.MalformedJson, err.message);
    }
    if (err.statusCode === 400) return fail(reply, 400, ApiError.MalformedJson, err.message);
    deps.onInternalError?.(err);
    return fail(reply, 500, ApiError.Internal, 'internal error');
  });
  app.setNotFoundHandler((req, reply) => fail(reply, 404, ApiError.NotFound, `no route for ${req.method} ${req.url}`));

  // onRequest runs before the body is read or parsed and before any handler: a refused request
  // costs no parsing and cannot reach the store, so it changes nothing.
  app.decorateRequest('principal', null);
  const auth = deps.auth;
  if (auth && auth.mode !== 'off') {
    app.addHook('onRequest', async (req, reply) => {
      if (req.routeOptions.url !== undefined && OPEN_ROUTES.has(req.routeOptions.url)) return;
      const result = await auth.authenticate(req.headers.authorization);
      if (result.ok) {
        req.principal = result.principal;
        return;
      }
      if (result.wwwAuthenticate) void reply.header('www-authenticate', result.wwwAuthenticate);
      if (result.status === 503) void reply.header('retry-after', '5');
      const error = result.status === 401 ? ApiError.Unauthenticated : ApiError.AuthUnavailable;
      const body: ErrorBody = { error, reason: result.reason, message: result.message };
      return reply.code(result.status).send(body);
    });
  }
  const caller = (req: { principal: Principal | null }) =>
    req.principal ? { 'enduser.id': `${req.principal.via}:${req.principal.subject}` } : {};

  app.get('/healthz', async (_req, reply) => reply.send({ status: 'ok' }));

  app.post('/orders', async (req, reply) => {
    const key = idempotencyKey(req.headers, reply);
    if (key === false) return reply;
    const body = parse(placeOrderSchema, req.body, reply);
    if (!body.ok) return reply;
    // The order's trace starts here (or continues the caller's traceparent): the outbox row records
    // it, Debezium puts it on the order.placed record, and the ingress and the saga continue it.
    const outcome = await inSpan(
      'POST /orders',
      { parent: contextFromKafkaHeaders(req.headers), attributes: caller(req) },
      async (span) => {
        const placed = await deps.store.placeOrder(body.data, key);
        if (placed.kind === 'done') span.setAttribute('orderId', placed.body.orderId);
        return placed;
      },
    );
    if (outcome.kind === 'done') void reply.header('location', `/orders/${outcome.body.orderId}`);
    return send(reply, '', outcome);
  });

  app.post<{ Params: { id: string } }>('/orders/:id/cancel', async (req, reply) => {
    const key = idempotencyKey(req.headers, reply);
    if (key === false) return reply;
    const body = parse(cancelOrderSchema, req.body ?? {}, reply);
    if (!body.ok) return reply;
    const outcome = await inSpan(
      'POST /orders/:id/cancel',
      { parent: contextFromKafkaHeaders(req.headers), attributes: { orderId: req.params.id, ...caller(req) } },
      () => deps.store.cancelOrder(req.params.id, body.data, key),
    );
    return send(reply, req.params.id, outcome);
  });

  app.get<{ Params: { id: string } }>('/orders/:id', async (req, reply) => {
    const order = await deps.store.getOrder(req.params.id);
    if (!order) return fail(reply, 404, ApiError.OrderNotFound, `order ${req.params.id} does not exist`);
    const view: OrderView = { ...order, saga: await deps.saga.read(req.params.id) };
    return reply.send(view);
  });

  const openApi = buildOpenApiDocument({ authRequired: auth !== undefined && auth.mode !== 'off' });
  app.get('/openapi.json', async (_req, reply) => reply.send(openApi));
  return app;
}
