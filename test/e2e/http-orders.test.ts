import pg from 'pg';
import pino from 'pino';

import type { OrderView } from '../../src/api/order-requests';
import { ApiError, IDEMPOTENT_REPLAY_HEADER } from '../../src/api/order-requests';
import type { RunningRoles } from '../../src/app/roles';
import { startRoles } from '../../src/app/roles';
import type { EventStoreConsumer } from '../../src/event-store/event-store-consumer';
import { createMetrics } from '../../src/observability/metrics';
import { orderWorkflowId } from '../../src/shared/saga-contract';
import { bundleSagaWorkflows } from '../../workers/saga-workers';
import type { CdcScope } from '../support/cdc-scope';
import { startCdcScope } from '../support/cdc-scope';
import type { IngressScope } from '../support/ingress-harness';
import { newScope, temporalClient, temporalRuns } from '../support/ingress-harness';
import { testSettings } from '../support/settings';
import { endpoints, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(300_000);

/** Every role the flow passes through, started as the processes start them (src/app/roles.ts). */
const ROLES = ['saga', 'orders', 'inventory', 'payments', 'notifications', 'eventStore', 'ingress', 'api'] as const;

/** HTTP → orders + outbox (one transaction) → Debezium → `order.placed` → ingress → real saga. */
describe('Orders HTTP API through CDC to the saga', () => {
  let scope: IngressScope;
  let cdc: CdcScope;
  let running: RunningRoles;
  let store: EventStoreConsumer;
  let temporal: Awaited<ReturnType<typeof temporalClient>>;
  const admin = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 2 });
  const sku = uniqueName('SKU-HTTP');

  beforeAll(async () => {
    scope = await newScope('http');
    // The scope's connector publishes its outbox rows to `<scope>.<topic>`, where its ingress and event store read.
    cdc = await startCdcScope('http', { prefix: scope.prefix });
    await admin.query('INSERT INTO inventory.stock (sku, available) VALUES ($1, 1000)', [sku]);
    // Settings as a deployment of this scope would pass them: the API on a free port with a small body limit.
    const settings = testSettings(ROLES, scope.prefix, {
      LOG_LEVEL: 'silent',
      KTS_API_PORT: '0',
      KTS_API_BODY_LIMIT_BYTES: String(16 * 1024),
    });
    const quiet = { log() {}, info() {}, warn() {}, error() {}, debug() {}, trace() {} };
    running = await startRoles(settings, ROLES, {
      logger: pino({ level: 'silent' }),
      metrics: createMetrics('e2e-http-orders'),
      workflowBundle: await bundleSagaWorkflows({ logger: quiet, traced: settings.common.temporalTracing }),
    });
    store = running.eventStore!;
    baseUrl = running.api!.url;
    temporal = await temporalClient();
  });

  afterAll(async () => {
    await running?.stop();
    await temporal?.close();
    await cdc?.stop();
    await admin.end();
  });

  const order = (over: Record<string, unknown> = {}) => ({
    customerId: 'cust-http',
    currency: 'EUR',
    paymentToken: 'tok_visa',
    items: [{ sku, quantity: 2, unitPriceMinor: 1_999 }],
    ...over,
  });
  let baseUrl: string;
  /** Real HTTP against the listening server (Fastify's inject needs an ESM-only module Jest cannot load). */
  const call = async (opts: { method: string; url: string; payload?: unknown; headers?: Record<string, string> }) => {
    const isText = typeof opts.payload === 'string';
    const res = await fetch(`${baseUrl}${opts.url}`, {
      method: opts.method,
      headers: {
        ...(opts.payload === undefined ? {} : { 'content-type': 'application/json' }),
        ...opts.headers,
      },
      body: opts.payload === undefined ? undefined : isText ? (opts.payload as string) : JSON.stringify(opts.payload),
    });
    const text = await res.text();
    return {
      statusCode: res.status,
      headers: Object.fromEntries(res.headers.entries()),
      json: <T = unknown>() => JSON.parse(text) as T,
    };
  };
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    call({ method: 'POST', url: '/orders', payload: body, headers });
  const getOrder = async (id: string) => (await call({ method: 'GET', url: `/orders/${id}` })).json<OrderView>();

  it('places an order that the saga confirms, and the event store has its whole chain of events in causal order', async () => {
    const res = await post(order());
    expect(res.statusCode).toBe(201);
    const created = res.json<{ orderId: string; eventId: string; totalMinor: number }>();
    expect(created.totalMinor).toBe(3_998);
    expect(res.headers.location).toBe(`/orders/${created.orderId}`);
    const done = await waitUntil(
      'order confirmed',
      () => getOrder(created.orderId),
      (o) => o.saga?.state === 'CONFIRMED',
    );
    expect(done.status).toBe('CONFIRMED');
    expect(done.saga?.workflowId).toBe(orderWorkflowId(created.orderId));
    expect(done.saga?.completedSteps).toEqual([
      'createOrder',
      'reserveStock',
      'chargePayment',
      'confirmOrder',
      'notifyCustomer',
    ]);
    // Every state change of every service reached the store through its outbox, Debezium and Kafka.
    const chain = [
      'order.placed',
      'notifications.notification-sent',
      'inventory.stock-reserved',
      'payments.payment-captured',
      'order.confirmed',
      'notifications.notification-sent',
    ];
    const history = await waitUntil(
      'the whole chain stored',
      () => store.store.history(created.orderId),
      (h) => h.length >= chain.length,
    );
    expect(history.map((e) => e.eventType)).toEqual(chain);
    expect(history[0]).toMatchObject({ eventId: created.eventId, eventType: 'order.placed', eventVersion: 2 });
    expect(history.map((e) => e.payload.kind).filter(Boolean)).toEqual(['ORDER_RECEIVED', 'ORDER_CONFIRMED']);
    expect(history[3]?.payload).toMatchObject({ amountMinor: 3_998, currency: 'EUR' });
    expect(history[4]?.payload).toMatchObject({ customerId: 'cust-http', totalMinor: 3_998, currency: 'EUR' });
    // Causal order: each step committed (and stamped occurredAt) after the one before it.
    const times = history.map((e) => e.occurredAt.getTime());
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(new Set(history.map((e) => e.eventId)).size).toBe(chain.length);
  });

  it('honours Idempotency-Key: the same POST twice (even at once) is one order and one saga; another body is refused', async () => {
    const key = uniqueName('key');
    const [a, b] = await Promise.all([
      post(order(), { 'idempotency-key': key }),
      post(order(), { 'idempotency-key': key }),
    ]);
    expect([a.statusCode, b.statusCode]).toEqual([201, 201]);
    expect(a.json()).toEqual(b.json());
    expect([a.headers[IDEMPOTENT_REPLAY_HEADER], b.headers[IDEMPOTENT_REPLAY_HEADER]].filter(Boolean)).toEqual([
      'true',
    ]);
    const { orderId } = a.json<{ orderId: string }>();
    const third = await post(order(), { 'idempotency-key': key });
    expect(third.json()).toEqual(a.json());
    const other = await post(order({ customerId: 'someone-else' }), { 'idempotency-key': key });
    expect(other.statusCode).toBe(422);
    expect(other.json<{ error: string }>().error).toBe(ApiError.IdempotencyKeyReused);

    await waitUntil(
      'saga confirmed',
      () => getOrder(orderId),
      (o) => o.saga?.state === 'CONFIRMED',
    );
    const orders = await admin.query(
      'SELECT 1 FROM orders.orders WHERE customer_id = $1 AND order_id IN (SELECT order_id FROM orders.api_requests WHERE idempotency_key = $2)',
      ['cust-http', key],
    );
    expect(orders.rowCount).toBe(1);
    const placed = await admin.query("SELECT 1 FROM orders.outbox WHERE aggregateid = $1 AND type = 'order.placed'", [
      orderId,
    ]);
    expect(placed.rowCount).toBeLessThanOrEqual(1); // the cleaner may have removed it; never two
    const runs = await temporalRuns(temporal.client, scope);
    expect(runs.get(orderWorkflowId(orderId))).toBe(1);
    const charges = await admin.query('SELECT 1 FROM payments.payments WHERE order_id = $1', [orderId]);
    expect(charges.rowCount).toBe(1);
  });

  it('refuses bad requests with clear 4xx answers', async () => {
    const bad = await post(order({ items: [{ sku, quantity: 0, unitPriceMinor: -1 }], currency: 'XXX', extra: 1 }));
    expect(bad.statusCode).toBe(400);
    const body = bad.json<{ error: string; issues: { path: string }[] }>();
    expect(body.error).toBe(ApiError.ValidationFailed);
    expect(body.issues.map((i) => i.path).sort()).toEqual([
      '(body)',
      'currency',
      'items.0.quantity',
      'items.0.unitPriceMinor',
    ]);

    const big = await post(
      order({ items: Array.from({ length: 400 }, () => ({ sku: 'x'.repeat(100), quantity: 1, unitPriceMinor: 1 })) }),
    );
    expect(big.statusCode).toBe(413);
    expect(big.json<{ error: string }>().error).toBe(ApiError.PayloadTooLarge);

    const text = await call({
      method: 'POST',
      url: '/orders',
      payload: 'hello',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.statusCode).toBe(415);
    const broken = await call({
      method: 'POST',
      url: '/orders',
      payload: '{"customerId":',
      headers: { 'content-type': 'application/json' },
    });
    expect(broken.statusCode).toBe(400);
    expect(broken.json<{ error: string }>().error).toBe(ApiError.MalformedJson);
    const badKey = await post(order(), { 'idempotency-key': 'has spaces' });
    expect(badKey.statusCode).toBe(400);

    const missing = await call({ method: 'GET', url: '/orders/nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json<{ error: string }>().error).toBe(ApiError.OrderNotFound);
    const cancelMissing = await call({ method: 'POST', url: '/orders/nope/cancel', payload: {} });
    expect(cancelMissing.statusCode).toBe(404);
    // Nothing of these reached the database.
    const leaked = await admin.query(
      "SELECT 1 FROM orders.orders WHERE customer_id = 'cust-http' AND currency = 'XXX'",
    );
    expect(leaked.rowCount).toBe(0);
  });

  it('cancel emits order.cancelled for a pending order and 409 once the order is confirmed', async () => {
    // Written straight into the table (no event), so it stays PENDING while we cancel it.
    const orderId = uniqueName('ord');
    await admin.query(
      "INSERT INTO orders.orders (order_id, customer_id, currency, total_minor, status) VALUES ($1, 'cust-http', 'EUR', 100, 'PENDING')",
      [orderId],
    );
    const res = await call({
      method: 'POST',
      url: `/orders/${orderId}/cancel`,
      payload: { reason: 'changed my mind' },
    });
    expect(res.statusCode).toBe(202);
    const { eventId } = res.json<{ eventId: string }>();
    const stored = await waitUntil(
      'order.cancelled stored',
      () => store.store.history(orderId),
      (h) => h.length >= 1,
    );
    expect(stored[0]).toMatchObject({ eventId, eventType: 'order.cancelled', payload: { reason: 'changed my mind' } });

    await admin.query("UPDATE orders.orders SET status = 'CONFIRMED' WHERE order_id = $1", [orderId]);
    const late = await call({ method: 'POST', url: `/orders/${orderId}/cancel`, payload: {} });
    expect(late.statusCode).toBe(409);
    expect(late.json<{ error: string }>().error).toBe(ApiError.OrderNotCancellable);
  });
});
