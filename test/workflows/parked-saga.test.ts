/**
 * Parked sagas (v3): a compensation that exhausts its retries parks the saga, open and findable,
 * until an operator decides through the decideParked update; each decision is an audit event in the
 * orders outbox. Real Temporal server, real services and card gateway (its refunds fail on purpose).
 */
import type { WorkflowHandle } from '@temporalio/client';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';

import type { ParkedSagaError } from '../../src/cli/parked-sagas';
import {
  countParkedSagas,
  decideParked,
  listParkedSagas,
  ParkedCommandError,
  showSaga,
} from '../../src/cli/parked-sagas';
import { DomainEventDecoder } from '../../src/event-store/domain-event-decoder';
import { RegistryClient } from '../../src/kafka/registry-client';
import type { OrderDetails, SagaStatus } from '../../src/shared/saga-contract';
import { decideParkedUpdate, FailureType, idempotencyKey, sagaStatusQuery } from '../../src/shared/saga-contract';
import {
  currencyKey,
  customerIdKey,
  failedStepKey,
  orderStateKey,
  orderTotalMinorKey,
  parkedSinceKey,
} from '../../src/shared/search-attributes';
import type { orderSaga } from '../../workflows';
import { stockOf } from '../support/db-harness';
import type { SagaHarness, SagaRun } from '../support/saga-harness';
import {
  CALM_GATEWAY,
  latch,
  maybeRecordHistory,
  newOrder,
  openSagaHarness,
  stockedSku,
  withSagaWorkers,
  workflowFailure,
} from '../support/saga-harness';
import { endpoints } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(180_000);

type Saga = WorkflowHandle<typeof orderSaga>;

describe('parked sagas on the real Temporal server', () => {
  let h: SagaHarness;
  const started: Saga[] = [];
  const decoder = new DomainEventDecoder(new RegistryClient(endpoints.registryUrl));
  beforeAll(async () => {
    h = await openSagaHarness();
  });
  afterAll(async () => {
    // Leave nothing open in the namespace people look at, even when a test failed half-way.
    for (const s of started) await s.terminate('test cleanup').catch(() => undefined);
    await h.close();
  });

  /** The gateway is up or down on demand: every request draws 0 (transient error) while it is down. */
  let gatewayDown = false;
  const gateway = { ...CALM_GATEWAY, transientErrorRate: 0.5, random: () => (gatewayDown ? 0 : 0.99) };
  /** confirmOrder refuses after the charge, so the saga must refund, and the gateway goes down first. */
  const refuseConfirmation = () => ({
    orders: {
      confirmOrder: () => {
        gatewayDown = true;
        return Promise.reject(
          ApplicationFailure.nonRetryable('order was failed meanwhile', FailureType.OrderNotPending),
        );
      },
    },
  });

  async function startParked(run: SagaRun, order: OrderDetails): Promise<Saga> {
    const handle = await run.start(order);
    started.push(handle);
    await waitUntil('the saga to park', async () => (await handle.query(sagaStatusQuery)).state === 'PARKED');
    return handle;
  }
  const charge = async (orderId: string) =>
    (
      await h.db.admin.query<{ amount_minor: string; refunded_minor: string }>(
        'SELECT amount_minor, refunded_minor FROM card_gateway.charges WHERE idempotency_key = $1',
        [idempotencyKey(`order-${orderId}`, 'chargePayment')],
      )
    ).rows;
  const decisionEvents = async (orderId: string) => {
    const { rows } = await h.db.admin.query<{ payload: Buffer; topic: string }>(
      `SELECT payload, topic FROM orders.outbox WHERE aggregateid = $1 AND type = 'order.parked-decision'
       ORDER BY created_at, id`,
      [orderId],
    );
    return Promise.all(rows.map(async (r) => ({ topic: r.topic, ...(await decoder.decode(r.payload)).payload })));
  };
  const refusal = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      return { type: (err as ParkedSagaError).type, message: (err as Error).message };
    }
    throw new Error('expected the decision to be refused');
  };

  it('parks on an exhausted refund, tells the story, refuses bad decisions, and a retry completes it once the gateway is back', async () => {
    gatewayDown = false;
    const sku = await stockedSku(h, 5);
    const order = { ...newOrder(sku, 2), items: [{ sku, quantity: 2, unitPriceMinor: 1_370 }] };
    await withSagaWorkers(h, { gateway, override: refuseConfirmation }, async (run) => {
      const handle = await startParked(run, order);
      const status = await handle.query(sagaStatusQuery);
      expect(status).toMatchObject<Partial<SagaStatus>>({
        state: 'PARKED',
        failure: expect.objectContaining({
          type: FailureType.OrderNotPending,
          step: 'confirmOrder',
        }) as SagaStatus['failure'],
        failedCompensations: [expect.objectContaining({ step: 'refundPayment', type: FailureType.GatewayUnavailable })],
        // The other compensations still ran: one stuck refund must not strand the stock.
        compensationsRun: ['releaseStock', 'failOrder', 'notifyCustomer'],
        parked: expect.objectContaining({ round: 1 }) as SagaStatus['parked'],
      });
      expect(await stockOf(h.db, sku)).toBe(5);

      // The Web UI's view: search attributes, summary, details, current details, activity summaries.
      const described = await handle.describe();
      expect(described.status.name).toBe('RUNNING');
      const sa = described.typedSearchAttributes;
      expect(sa.get(orderStateKey)).toBe('PARKED');
      expect(sa.get(failedStepKey)).toBe('refundPayment');
      expect(sa.get(customerIdKey)).toBe(order.customerId);
      expect(sa.get(orderTotalMinorKey)).toBe(2_740);
      expect(sa.get(currencyKey)).toBe('EUR');
      expect(sa.get(parkedSinceKey)).toBeInstanceOf(Date);
      expect(await described.staticSummary()).toBe(`order ${order.orderId} · customer ${order.customerId} · 27.40 EUR`);
      expect(await described.staticDetails()).toContain(`| ${sku} | 2 | 13.70 EUR |`);
      const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      expect(metadata.currentDetails).toMatch(
        /^Parked since .*refundPayment \(GatewayUnavailable: .*orders parked retry/,
      );
      const summaries = (await handle.fetchHistory()).events
        ?.filter((e) => e.activityTaskScheduledEventAttributes)
        .map((e) => (e.userMetadata?.summary?.data ? Buffer.from(e.userMetadata.summary.data).toString('utf8') : ''));
      expect(summaries).toEqual(
        expect.arrayContaining([
          `"charge 27.40 EUR"`,
          `"reserve 2 × ${sku}"`,
          `"release 2 × ${sku}"`,
          `"refund 27.40 EUR"`,
        ]),
      );

      // Listed and counted through visibility, as operators and the alert find it.
      await waitUntil(
        'visibility to list the parked saga',
        async () => (await listParkedSagas(h.client, { taskQueue: run.taskQueues.saga })).length === 1,
      );
      const [listed] = await listParkedSagas(h.client, { taskQueue: run.taskQueues.saga });
      expect(listed).toMatchObject({ orderId: order.orderId, failedStep: 'refundPayment', totalMinor: 2_740 });
      expect(await countParkedSagas(h.client, { taskQueue: run.taskQueues.saga, overdueAfterMs: 3_600_000 })).toEqual({
        parked: 1,
        overdue: 0,
      });
      await waitUntil(
        'the parked saga to count as overdue past a 1 ms limit',
        async () =>
          (await countParkedSagas(h.client, { taskQueue: run.taskQueues.saga, overdueAfterMs: 1 })).overdue === 1,
      );

      // Incomplete decisions are refused by the saga's validator itself, not only by the CLI.
      const validatorRefusal = async (decision: Parameters<typeof decideParked>[2]) => {
        try {
          await handle.executeUpdate(decideParkedUpdate, { args: [decision] });
        } catch (err) {
          expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
          return (err as WorkflowUpdateFailedError).cause;
        }
        throw new Error('expected the saga to refuse the decision');
      };
      expect(await validatorRefusal({ decision: 'RESOLVE_MANUALLY', operator: 'alice' })).toMatchObject({
        type: FailureType.InvalidDecision,
        message: 'a reason is required to resolve a parked saga',
      });
      expect(await validatorRefusal({ decision: 'ABANDON', operator: ' ', reason: 'x' })).toMatchObject({
        type: FailureType.InvalidDecision,
        message: 'an operator (who decides) is required',
      });
      expect(await refusal(decideParked(h.client, order.orderId, { decision: 'ABANDON', operator: 'alice' }))).toEqual({
        type: ParkedCommandError.InvalidDecision,
        message: 'a reason is required to abandon a parked saga',
      });

      // A retry while the gateway is still down parks it again (round 2); after the gateway is back, it completes.
      const afterFirst = await decideParked(h.client, order.orderId, { decision: 'RETRY', operator: 'alice' });
      expect(afterFirst.decisions).toHaveLength(1);
      await waitUntil(
        'the retried refund to park again',
        async () => (await handle.query(sagaStatusQuery)).parked?.round === 2,
      );
      gatewayDown = false;
      const afterSecond = await decideParked(h.client, order.orderId, {
        decision: 'RETRY',
        operator: 'bob',
        reason: 'gateway incident closed',
      });
      expect(afterSecond.decisions?.map((d) => d.operator)).toEqual(['alice', 'bob']);
      const result = await handle.result();
      expect(result.outcome).toBe('FAILED');
      expect(result.status).toMatchObject<Partial<SagaStatus>>({
        state: 'FAILED',
        failedCompensations: [],
        parked: null,
        compensationsRun: ['releaseStock', 'failOrder', 'notifyCustomer', 'refundPayment'],
      });
      expect((await handle.describe()).typedSearchAttributes.get(orderStateKey)).toBe('FAILED');
      expect((await handle.describe()).typedSearchAttributes.get(parkedSinceKey)).toBeUndefined();
      // Decided sagas are no longer listed, and a decision on a closed saga is refused.
      const late = await refusal(decideParked(h.client, order.orderId, { decision: 'RETRY', operator: 'carol' }));
      expect(late.type).toBe(ParkedCommandError.NotParked);
      expect(late.message).toContain('is not parked');
      await maybeRecordHistory(handle, 'parked-retried');
    });
    expect(await charge(order.orderId)).toEqual([{ amount_minor: '2740', refunded_minor: '2740' }]);
    const events = await decisionEvents(order.orderId);
    expect(events).toEqual([
      expect.objectContaining({
        eventType: 'order.parked-decision',
        decision: 'RETRY',
        operator: 'alice',
        reason: null,
        failedSteps: ['refundPayment'],
        round: 1,
      }),
      expect.objectContaining({ decision: 'RETRY', operator: 'bob', reason: 'gateway incident closed', round: 2 }),
    ]);
    expect(events[0]?.topic).toBe(`${h.outbox.topicPrefix}.order.parked-decision`);
  });

  it('resolved by hand: the saga ends RESOLVED_MANUALLY with the operator and reason on record', async () => {
    gatewayDown = false;
    const sku = await stockedSku(h, 2);
    const order = newOrder(sku, 1);
    await withSagaWorkers(h, { gateway, override: refuseConfirmation }, async (run) => {
      const handle = await startParked(run, order);
      const status = await decideParked(h.client, order.orderId, {
        decision: 'RESOLVE_MANUALLY',
        operator: 'dana',
        reason: 'refunded 25.00 EUR by hand in the gateway console',
      });
      expect(status.state).toBe('RESOLVED_MANUALLY');
      const result = await handle.result();
      expect(result.outcome).toBe('FAILED');
      expect(result.status.decisions).toEqual([
        expect.objectContaining({ decision: 'RESOLVE_MANUALLY', operator: 'dana', failedSteps: ['refundPayment'] }),
      ]);
      const view = await showSaga(h.client, order.orderId);
      expect(view).toMatchObject({
        executionStatus: 'COMPLETED',
        state: 'RESOLVED_MANUALLY',
        failedStep: 'refundPayment',
      });
      await maybeRecordHistory(handle, 'parked-resolved');
    });
    expect(await decisionEvents(order.orderId)).toEqual([
      expect.objectContaining({
        decision: 'RESOLVE_MANUALLY',
        operator: 'dana',
        reason: expect.stringContaining('by hand') as string,
      }),
    ]);
    gatewayDown = false;
  });

  it('abandoned: the saga fails with CompensationFailed, state ABANDONED, the decision on record', async () => {
    gatewayDown = false;
    const sku = await stockedSku(h, 2);
    const order = newOrder(sku, 1);
    await withSagaWorkers(h, { gateway, override: refuseConfirmation }, async (run) => {
      const handle = await startParked(run, order);
      await decideParked(h.client, order.orderId, {
        decision: 'ABANDON',
        operator: 'erin',
        reason: 'card closed; bank refunds',
      });
      const failure = await workflowFailure(handle.result());
      expect(failure.type).toBe(FailureType.CompensationFailed);
      expect(failure.details[0]).toMatchObject<Partial<SagaStatus>>({
        state: 'ABANDONED',
        failedCompensations: [expect.objectContaining({ step: 'refundPayment' })],
      });
      expect((await handle.describe()).typedSearchAttributes.get(orderStateKey)).toBe('ABANDONED');
      await maybeRecordHistory(handle, 'parked-abandoned');
    });
    expect(await decisionEvents(order.orderId)).toEqual([
      expect.objectContaining({ decision: 'ABANDON', operator: 'erin' }),
    ]);
    gatewayDown = false;
  });

  it('refuses a decision for an unknown order and for a running saga that is not parked', async () => {
    expect(await refusal(decideParked(h.client, 'no-such-order', { decision: 'RETRY', operator: 'x' }))).toMatchObject({
      type: ParkedCommandError.UnknownOrder,
    });
    const sku = await stockedSku(h, 2);
    const order = newOrder(sku, 1);
    const gate = latch();
    await withSagaWorkers(
      h,
      {
        override: (real) => ({
          inventory: {
            reserveStock: async (input) => {
              await gate.wait();
              return real.inventory.reserveStock(input);
            },
          },
        }),
      },
      async (run) => {
        const handle = await run.start(order);
        started.push(handle);
        await waitUntil(
          'the saga to reach reserveStock',
          async () => (await handle.query(sagaStatusQuery)).currentStep === 'reserveStock',
        );
        const refused = await refusal(decideParked(h.client, order.orderId, { decision: 'RETRY', operator: 'x' }));
        expect(refused.type).toBe(ParkedCommandError.NotParked);
        expect(refused.message).toContain('(state RUNNING)');
        expect((await handle.describe()).typedSearchAttributes.get(orderStateKey)).toBe('RUNNING');
        gate.open();
        expect((await handle.result()).outcome).toBe('CONFIRMED');
        expect((await handle.describe()).typedSearchAttributes.get(orderStateKey)).toBe('CONFIRMED');
      },
    );
  });
});
