import { patched, workflowInfo } from '@temporalio/workflow';

import type { InventoryActivities } from '../src/services/inventory/inventory-activities';
import type { NotificationsActivities } from '../src/services/notifications/notifications-activities';
import type { OrdersActivities } from '../src/services/orders/orders-activities';
import type { PaymentsActivities } from '../src/services/payments/payments-activities';
import type { OrderSagaInput, OrderSagaResult, SagaTuning } from '../src/shared/saga-contract';
import {
  DEFAULT_SAGA_TUNING,
  describeItems,
  formatMoney,
  idempotencyKey,
  orderTotalMinor,
  PATCHES,
  TASK_QUEUES,
} from '../src/shared/saga-contract';
import { currencyKey, customerIdKey, orderTotalMinorKey } from '../src/shared/search-attributes';
import { failureReason, Saga, summarisedActivities } from './saga-machinery';

/**
 * Hooks that let the replay tests build a deliberately changed saga from this very code. The
 * production workflow passes none.
 */
export interface SagaVariant {
  /** Decides whether to send the v2 "order received" notice; production asks patched(). */
  sendReceivedNotice?: () => boolean;
  /** Decides whether an exhausted compensation parks the saga (v3) or fails it; production asks patched(). */
  parkOnCompensationFailure?: () => boolean;
  /** Decides whether the saga keeps its search attributes current (v3); production asks patched(). */
  publishSearchAttributes?: () => boolean;
}

/**
 * The saga's body, shared by {@link orderSaga} and the replay tests' deliberately broken variants.
 * Not a workflow itself: only `workflows/index.ts` exports workflows. It reads as the business
 * sequence; steps, compensation, status and parking are the machinery's (saga-machinery.ts).
 */
export async function runOrderSaga(input: OrderSagaInput, variant: SagaVariant = {}): Promise<OrderSagaResult> {
  const { order } = input;
  const queues = input.taskQueues ?? TASK_QUEUES;
  const tuning: SagaTuning = { ...DEFAULT_SAGA_TUNING, ...input.tuning };
  const { workflowId } = workflowInfo();
  const key = (step: Parameters<typeof idempotencyKey>[1]) => idempotencyKey(workflowId, step);
  const total = orderTotalMinor(order);
  const money = formatMoney(total, order.currency);
  const items = describeItems(order.items);

  // Each service's activities on its task queue. Forward steps give up sooner; compensations and the
  // outcome notices (sent once the outcome is decided) get the long, patient policy.
  const { activityTimeoutMs: timeout, forwardRetry: forward, compensationRetry: patient } = tuning;
  const orders = summarisedActivities<OrdersActivities>(queues.orders, timeout, forward);
  const inventory = summarisedActivities<InventoryActivities>(queues.inventory, timeout, forward);
  const payments = summarisedActivities<PaymentsActivities>(queues.payments, timeout, forward);
  const courtesyNotices = summarisedActivities<NotificationsActivities>(queues.notifications, timeout, forward);
  const ordersUndo = summarisedActivities<OrdersActivities>(queues.orders, timeout, patient);
  const inventoryUndo = summarisedActivities<InventoryActivities>(queues.inventory, timeout, patient);
  const paymentsUndo = summarisedActivities<PaymentsActivities>(queues.payments, timeout, patient);
  const notifications = summarisedActivities<NotificationsActivities>(queues.notifications, timeout, patient);

  const saga = new Saga({
    orderId: order.orderId,
    amount: money,
    eventOccurredAt: input.eventOccurredAt,
    // v3 keeps search attributes current so the Web UI can list sagas by state, failed step, customer or
    // total. Runs recorded before it have no marker, take `false` on replay, and upsert nothing.
    publishSearchAttributes: variant.publishSearchAttributes ?? (() => patched(PATCHES.orderSearchAttributes)),
    // v3 parks a saga whose compensation exhausted its retries; runs from before it fail as they did.
    parkOnCompensationFailure: variant.parkOnCompensationFailure ?? (() => patched(PATCHES.parkOnCompensationFailure)),
    listedBy: [
      { key: customerIdKey, value: order.customerId },
      { key: currencyKey, value: order.currency },
      // A malformed order (fractions, overflow) fails in createOrder; its total is simply not listed.
      ...(Number.isSafeInteger(total) ? [{ key: orderTotalMinorKey, value: total }] : []),
    ],
    runningDetails: `Running: order ${order.orderId} for ${order.customerId}, ${money} (${items})`,
    // Once the customer has paid, the order goes through.
    pointOfNoReturn: 'payment was captured',
    recordDecision: ({ decision, operator, reason, round, failedSteps, decidedAt }) =>
      ordersUndo(`record ${decision.decision} by ${decision.operator}`).recordParkedDecision({
        idempotencyKey: key(`parkedDecision-${round}`),
        orderId: order.orderId,
        decision: decision.decision,
        operator,
        reason,
        failedSteps,
        round,
        decidedAt,
      }),
  });

  try {
    await saga.forward(async () => {
      const created = await saga.step(
        'createOrder',
        () =>
          orders(`create order ${order.orderId} for ${order.customerId}: ${money}`).createOrder({
            idempotencyKey: key('createOrder'),
            order,
          }),
        {
          step: 'failOrder',
          run: () =>
            ordersUndo(`fail order ${order.orderId}: ${saga.failure?.type ?? 'unknown'}`).failOrder({
              idempotencyKey: key('failOrder'),
              orderId: order.orderId,
              reason: failureReason(saga.status),
            }),
        },
      );

      // v2 sends a courtesy notice here. Histories recorded before it have no patch marker, so on
      // replay patched() is false for them and they take the v1 path: old runs stay deterministic.
      const sendReceivedNotice = variant.sendReceivedNotice ?? (() => patched(PATCHES.orderReceivedNotice));
      if (sendReceivedNotice()) {
        // A courtesy notice must not fail the order; its failure stays visible in the status.
        await saga.courtesy('notifyCustomer', () =>
          courtesyNotices(`tell ${order.customerId}: order received`).notifyCustomer({
            idempotencyKey: key('notifyReceived'),
            orderId: order.orderId,
            customerId: order.customerId,
            kind: 'ORDER_RECEIVED',
          }),
        );
      }

      await saga.step(
        'reserveStock',
        () =>
          inventory(`reserve ${items}`).reserveStock({
            idempotencyKey: key('reserveStock'),
            orderId: order.orderId,
            items: order.items.map(({ sku, quantity }) => ({ sku, quantity })),
          }),
        {
          step: 'releaseStock',
          run: () =>
            inventoryUndo(`release ${items}`).releaseStock({
              idempotencyKey: key('releaseStock'),
              reservationKey: key('reserveStock'),
              orderId: order.orderId,
            }),
        },
      );

      await saga.step(
        'chargePayment',
        () =>
          payments(`charge ${money}`).chargePayment({
            idempotencyKey: key('chargePayment'),
            orderId: order.orderId,
            amountMinor: created.totalMinor,
            currency: created.currency,
            paymentToken: order.paymentToken,
          }),
        {
          step: 'refundPayment',
          run: () =>
            paymentsUndo(`refund ${money}`).refundPayment({
              idempotencyKey: key('refundPayment'),
              chargeKey: key('chargePayment'),
              orderId: order.orderId,
            }),
        },
      );
      saga.passPointOfNoReturn();

      await saga.step('confirmOrder', () =>
        orders(`confirm order ${order.orderId}`).confirmOrder({
          idempotencyKey: key('confirmOrder'),
          orderId: order.orderId,
        }),
      );
    });
  } catch (err) {
    // Undo what was done, last-in first-out, then tell the customer why the order failed.
    return saga.compensate(err, {
      step: 'notifyCustomer',
      run: () =>
        notifications(`tell ${order.customerId}: order failed`).notifyCustomer({
          idempotencyKey: key('notifyFailed'),
          orderId: order.orderId,
          customerId: order.customerId,
          kind: 'ORDER_FAILED',
          reason: failureReason(saga.status),
        }),
    });
  }

  // The order is confirmed: the notice cannot undo anything, so its failure is reported, not compensated.
  await saga.afterOutcome('notifyCustomer', `Confirmed: telling ${order.customerId}`, () =>
    notifications(`tell ${order.customerId}: order confirmed`).notifyCustomer({
      idempotencyKey: key('notifyConfirmed'),
      orderId: order.orderId,
      customerId: order.customerId,
      kind: 'ORDER_CONFIRMED',
    }),
  );
  return saga.confirmed(`Confirmed: order ${order.orderId}, ${money} charged`);
}

/**
 * The order saga: createOrder → reserveStock → chargePayment → confirmOrder → notifyCustomer, on the
 * services' task queues. Start it with workflow id `orderWorkflowId(orderId)`.
 *
 * - Idempotency: every activity gets the key `<workflowId>/<step>`, so retries, worker crashes and
 *   a restarted run of the same order repeat no effect.
 * - Compensation: on any failure, or on `cancelOrderSignal` before payment is captured, the
 *   completed steps are undone last-in first-out in a non-cancellable scope (releaseStock,
 *   refundPayment, failOrder), then the customer is told. The result is then FAILED.
 * - A compensation that exhausts its retry policy parks the saga (PARKED, search attribute
 *   OrderState = "PARKED") until an operator sends `decideParkedUpdate`: RETRY, RESOLVE_MANUALLY or
 *   ABANDON (the last fails the workflow with type CompensationFailed, details = the final
 *   {@link SagaStatus}). Runs from before the patch fail with CompensationFailed at once, as they did.
 * - Search attributes (OrderState, FailedStep, CustomerId, OrderTotalMinor, Currency, ParkedSince),
 *   current details and a summary on every activity say what the saga is doing or waiting for.
 * - `sagaStatusQuery` returns the current step, completed steps and compensations run.
 */
export async function orderSaga(input: OrderSagaInput): Promise<OrderSagaResult> {
  return runOrderSaga(input);
}
