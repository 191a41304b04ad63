/**
 * Failure drill (issue #11): a compensation that cannot succeed parks the saga, and operators end it.
 *
 * Two orders are cancelled while their charge is in flight at a slow card gateway (the product's
 * KTS_GATEWAY_LATENCY_* setting), so each saga must refund. The payments worker is then replaced by
 * one whose gateway is down (KTS_GATEWAY_TRANSIENT_ERROR_RATE=1): every refund attempt fails, the
 * compensation exhausts its retries and both sagas park. With the real operator CLI:
 *   - order A: `orders parked retry` while the gateway is still down parks it again (round 2); the
 *     gateway comes back (a healthy payments worker), a second `retry` refunds it: FAILED, fully undone;
 *   - order B: `orders parked resolve --operator … --reason …`: RESOLVED_MANUALLY, the charge left as is.
 * Counts come from PostgreSQL (the gateway's charges and refunds, the payments records) and Temporal
 * (each run's end state, no failed workflow task), and every decision travels as order.parked-decision
 * through the orders outbox → Debezium → Kafka → the event store, where `orders history` shows it.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';

import { scopeNames } from '../../src/config/scope';
import type { OrderState } from '../../src/event-store/order-state';
import type { OrderDetails, OrderSagaResult, SagaTuning } from '../../src/shared/saga-contract';
import {
  cancelOrderSignal,
  idempotencyKey,
  orderWorkflowId,
  sagaStartMetadata,
  sagaStatusQuery,
} from '../../src/shared/saga-contract';
import type { orderSaga } from '../../workflows';
import type { CdcScope } from '../support/cdc-scope';
import { startCdcScope } from '../support/cdc-scope';
import type { DrillProcess } from '../support/drill-roles';
import { ordersCli, quietTemporalRuntime, startDrillProcess, workflowTaskFailures } from '../support/drill-roles';
import { TEST_TUNING } from '../support/saga-harness';
import { endpoints, uniqueName } from '../support/stack';
import { waitUntil } from '../support/wait-until';

// About 1.5 min alone; the margin is for a machine shared with other suites (no wall-clock limit is asserted).
jest.setTimeout(420_000);

/** The gateway holds each charge this long after booking it: the window in which the orders are cancelled. */
const GATEWAY_LATENCY_MS = 10_000;
/** Short compensation retries, so a refund against a gateway that is down exhausts them in about a second. */
const TUNING: SagaTuning = { ...TEST_TUNING, activityTimeoutMs: 20_000 };
const SLOW_GATEWAY = {
  KTS_GATEWAY_LATENCY_MIN_MS: String(GATEWAY_LATENCY_MS),
  KTS_GATEWAY_LATENCY_MAX_MS: String(GATEWAY_LATENCY_MS),
};
const GATEWAY_DOWN = { KTS_GATEWAY_TRANSIENT_ERROR_RATE: '1' };
const PRICE = 3_150;

describe('drill: parked sagas, retried and resolved by operators', () => {
  const scope = uniqueName('drill_parked');
  const names = scopeNames(scope);
  const admin = new pg.Pool({ connectionString: endpoints.postgresUrl, max: 3 });
  let cdc: CdcScope;
  let connection: Connection;
  let client: Client;
  let core: DrillProcess | undefined;
  let payments: DrillProcess | undefined;
  const handles: WorkflowHandle<typeof orderSaga>[] = [];

  beforeAll(async () => {
    quietTemporalRuntime();
    // The scope's topics and its own Debezium connector over the services' outbox tables.
    cdc = await startCdcScope('drill_parked', { prefix: scope });
    connection = await Connection.connect({ address: endpoints.temporalAddress });
    client = new Client({ connection });
  });

  afterAll(async () => {
    for (const h of handles) await h.terminate('drill cleanup').catch(() => undefined);
    await payments?.stop().catch(() => undefined);
    await core?.stop().catch(() => undefined);
    await connection?.close();
    await cdc?.stop();
    await admin.end();
  });

  const swapPayments = async (name: string, env: Record<string, string>) => {
    await payments?.stop();
    payments = await startDrillProcess(scope, name, ['payments'], env);
  };

  const state = async (h: WorkflowHandle<typeof orderSaga>) => h.query(sagaStatusQuery);
  const parkedInRound = (h: WorkflowHandle<typeof orderSaga>, round: number) =>
    waitUntil(
      `${h.workflowId} parked in round ${round}`,
      () => state(h),
      (s) => s.state === 'PARKED' && s.parked?.round === round,
      { timeoutMs: 120_000 },
    );

  /** The gateway's ledger for an order: charges captured, refunds made, refund requests refused while down. */
  async function gatewayCounts(orderId: string) {
    const wf = orderWorkflowId(orderId);
    const chargeKey = idempotencyKey(wf, 'chargePayment');
    const refundKey = idempotencyKey(wf, 'refundPayment');
    const { rows } = await admin.query<{ captured: number; refunds: number; refused: number; payment: string }>(
      `SELECT
         (SELECT count(*)::int FROM card_gateway.charges WHERE idempotency_key = $1 AND outcome = 'captured') AS captured,
         (SELECT count(*)::int FROM card_gateway.refunds WHERE idempotency_key = $2) AS refunds,
         (SELECT count(*)::int FROM card_gateway.requests WHERE idempotency_key = $2 AND result = 'unavailable') AS refused,
         (SELECT string_agg(status, ',') FROM payments.payments WHERE charge_key = $1) AS payment`,
      [chargeKey, refundKey],
    );
    return rows[0]!;
  }

  /** `orders history <id> --json`: the event store's events and the state rebuilt from them. */
  async function history(orderId: string) {
    return JSON.parse(await ordersCli(['history', orderId, '--json'])) as {
      events: { eventType: string; payload: Record<string, unknown> }[];
      state: OrderState;
    };
  }

  it('parks on a refund the gateway refuses; retry completes one after the gateway returns, resolve ends the other', async () => {
    const sku = uniqueName('SKU-DRILL-PARK');
    await admin.query('INSERT INTO inventory.stock (sku, available) VALUES ($1, 10)', [sku]);
    core = await startDrillProcess(scope, 'core', ['saga', 'orders', 'inventory', 'notifications', 'eventStore']);
    await swapPayments('payments-slow', SLOW_GATEWAY);

    const orders: OrderDetails[] = ['a', 'b'].map((k) => ({
      orderId: uniqueName(`drill-park-${k}`),
      customerId: `cust-drill-${k}`,
      currency: 'EUR',
      paymentToken: 'tok_visa',
      items: [{ sku, quantity: 1, unitPriceMinor: PRICE }],
    }));
    for (const order of orders) {
      handles.push(
        await client.workflow.start<typeof orderSaga>('orderSaga', {
          taskQueue: names.taskQueues.saga,
          workflowId: orderWorkflowId(order.orderId),
          args: [{ order, taskQueues: names.taskQueues, tuning: TUNING }],
          ...sagaStartMetadata(order),
        }),
      );
    }
    const [a, b] = handles as [WorkflowHandle<typeof orderSaga>, WorkflowHandle<typeof orderSaga>];
    const [orderA, orderB] = orders as [OrderDetails, OrderDetails];

    // Each order is cancelled as soon as the gateway has booked its charge and still holds the answer:
    // the signal is in the history before the charge completes, so the saga must refund it.
    const signalled = new Set<string>();
    await waitUntil(
      'both charges booked at the gateway, each order cancelled meanwhile',
      async () => {
        for (const [i, o] of orders.entries()) {
          if (signalled.has(o.orderId) || (await gatewayCounts(o.orderId)).captured === 0) continue;
          await handles[i]!.signal(cancelOrderSignal, { reason: 'customer cancelled during the drill' });
          signalled.add(o.orderId);
        }
        return signalled.size;
      },
      (n) => n === orders.length,
      { timeoutMs: 120_000 },
    );
    // The gateway goes down: the payments worker is replaced by one whose gateway refuses everything.
    // The old one stops polling at once and finishes the two charges in flight.
    await swapPayments('payments-gateway-down', GATEWAY_DOWN);

    const parkedA = await parkedInRound(a, 1);
    const parkedB = await parkedInRound(b, 1);
    for (const s of [parkedA, parkedB]) {
      expect(s.failedCompensations.map((f) => f.step)).toEqual(['refundPayment']);
      // Refused by the gateway; or, when the last attempt went to a poll the stopped worker left behind,
      // lost and timed out (Temporal's recovery of a task nobody runs): both leave the charge unrefunded.
      expect(['GatewayUnavailable', 'TimeoutFailure']).toContain(s.failedCompensations[0]?.type);
      expect(s.compensationsRun).toEqual(['releaseStock', 'failOrder', 'notifyCustomer']);
    }
    // What an operator sees: both in `orders parked list` (visibility indexes them shortly after parking).
    const listed = await waitUntil(
      'both sagas in `orders parked list`',
      () => ordersCli(['parked', 'list', '--task-queue', names.taskQueues.saga, '--json']),
      (out) => orders.every((o) => out.includes(`"orderId":"${o.orderId}"`)),
      { timeoutMs: 120_000 },
    );
    expect(listed.split('\n').filter(Boolean)).toHaveLength(2);

    // A retry while the gateway is still down: the refund fails again and the saga parks again, round 2.
    const retried = await ordersCli(['parked', 'retry', orderA.orderId, '--operator', 'alice']);
    expect(retried).toContain(`RETRY recorded for order ${orderA.orderId}`);
    await parkedInRound(a, 2);

    // The gateway returns; the second retry refunds A. B is resolved by hand, with who and why.
    await swapPayments('payments-healthy', {});
    await ordersCli(['parked', 'retry', orderA.orderId, '--operator', 'alice', '--reason', 'gateway is back']);
    const reason = 'refunded by hand in the gateway console, ticket OPS-42';
    const resolved = await ordersCli(['parked', 'resolve', orderB.orderId, '--operator', 'bob', '--reason', reason]);
    expect(resolved).toContain(`RESOLVE_MANUALLY recorded for order ${orderB.orderId}`);

    const endA: OrderSagaResult = await a.result();
    const endB: OrderSagaResult = await b.result();
    expect([endA.outcome, endA.status.state]).toEqual(['FAILED', 'FAILED']);
    expect(endA.status.compensationsRun).toEqual(['releaseStock', 'failOrder', 'notifyCustomer', 'refundPayment']);
    expect(endA.status.decisions?.map((d) => [d.decision, d.operator, d.round])).toEqual([
      ['RETRY', 'alice', 1],
      ['RETRY', 'alice', 2],
    ]);
    expect([endB.outcome, endB.status.state]).toEqual(['FAILED', 'RESOLVED_MANUALLY']);
    expect(endB.status.decisions?.map((d) => [d.decision, d.operator, d.reason])).toEqual([
      ['RESOLVE_MANUALLY', 'bob', reason],
    ]);
    // Temporal: both runs closed as completed, no workflow task ever failed.
    for (const h of handles) {
      expect((await h.describe()).status.name).toBe('COMPLETED');
      expect(await workflowTaskFailures(h)).toEqual([]);
    }

    // PostgreSQL: one charge each; A refunded exactly once after refused attempts, B's charge untouched.
    const countsA = await gatewayCounts(orderA.orderId);
    const countsB = await gatewayCounts(orderB.orderId);
    expect(countsA).toMatchObject({ captured: 1, refunds: 1, payment: 'REFUNDED' });
    expect(countsB).toMatchObject({ captured: 1, refunds: 0, payment: 'CAPTURED' });
    // Round 1 and round 2 each exhausted the compensation policy against the down gateway, which
    // refused every attempt that reached it (at most one per attempt, at least one per round).
    const attempts = TUNING.compensationRetry.maximumAttempts;
    expect(countsA.refused).toBeGreaterThanOrEqual(2);
    expect(countsA.refused).toBeLessThanOrEqual(2 * attempts);
    expect(countsB.refused).toBeGreaterThanOrEqual(1);
    expect(countsB.refused).toBeLessThanOrEqual(attempts);
    const released = await admin.query<{ available: number }>('SELECT available FROM inventory.stock WHERE sku = $1', [
      sku,
    ]);
    expect(released.rows[0]?.available).toBe(10);

    // The audit trail: each decision came to the event store from the scope's Kafka topic (Debezium's).
    const decisionTopic = names.topics.orderParkedDecision;
    const stored = await waitUntil(
      'three order.parked-decision events in the event store',
      async () =>
        (
          await admin.query<{ order_id: string; source_topic: string; payload: Record<string, unknown> }>(
            `SELECT order_id, source_topic, payload FROM event_store.events
              WHERE event_type = 'order.parked-decision' AND order_id = ANY($1) ORDER BY occurred_at`,
            [orders.map((o) => o.orderId)],
          )
        ).rows,
      (rows) => rows.length >= 3,
      { timeoutMs: 90_000 },
    );
    expect(stored).toHaveLength(3);
    expect(stored.map((r) => [r.order_id, r.source_topic, r.payload.decision, r.payload.operator])).toEqual(
      expect.arrayContaining([
        [orderA.orderId, decisionTopic, 'RETRY', 'alice'],
        [orderA.orderId, decisionTopic, 'RETRY', 'alice'],
        [orderB.orderId, decisionTopic, 'RESOLVE_MANUALLY', 'bob'],
      ]),
    );
    // `orders history`: A's state after its refund landed, B's with the decision that ended it.
    const histA = await waitUntil(
      "A's history to show the refund after the retry",
      () => history(orderA.orderId),
      (h) => h.state.parked?.state === 'RETRIED',
      { timeoutMs: 120_000 },
    );
    expect(histA.state).toMatchObject({ status: 'FAILED', payment: 'REFUNDED', paidMinor: 0, stock: 'RELEASED' });
    expect(histA.state.parked).toMatchObject({ round: 2, failedSteps: ['refundPayment'], openSteps: [] });
    expect(histA.state.decisions.map((d) => [d.decision, d.operator, d.reason, d.round])).toEqual([
      ['RETRY', 'alice', null, 1],
      ['RETRY', 'alice', 'gateway is back', 2],
    ]);
    const histB = await history(orderB.orderId);
    expect(histB.state).toMatchObject({ status: 'FAILED', payment: 'CAPTURED', paidMinor: PRICE });
    expect(histB.state.parked).toMatchObject({ state: 'RESOLVED_MANUALLY', round: 1 });
    expect(histB.state.decisions.map((d) => [d.decision, d.operator, d.reason])).toEqual([
      ['RESOLVE_MANUALLY', 'bob', reason],
    ]);
    console.log(
      JSON.stringify({
        drill: 'parked-retry-resolve',
        parked: 2,
        charges: countsA.captured + countsB.captured,
        refunds: countsA.refunds + countsB.refunds,
        refusedRefundAttempts: { a: countsA.refused, b: countsB.refused },
        decisionsInEventStore: stored.length,
      }),
    );
    // The human-readable history names the decision, who took it and why.
    const text = await ordersCli(['history', orderB.orderId]);
    expect(text).toContain(`order.parked-decision v1`);
    expect(text).toContain(`RESOLVE_MANUALLY of refundPayment (round 1) by bob: ${reason}`);
  });
});
