import type { ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxySinks,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';

import type { InventoryActivities } from '../activities/inventory-activities';
import type { NotificationsActivities } from '../activities/notifications-activities';
import type { OrdersActivities } from '../activities/orders-activities';
import type { PaymentsActivities } from '../activities/payments-activities';
import type {
  CompensationStep,
  OrderSagaInput,
  OrderSagaResult,
  RetryTuning,
  SagaFailureInfo,
  SagaMetricsSinks,
  SagaStatus,
  SagaStep,
  SagaTuning,
} from '../src/shared/saga-contract';
import {
  DEFAULT_SAGA_TUNING,
  FailureType,
  NO_EFFECT_FAILURE_TYPES,
  NON_RETRYABLE_FAILURE_TYPES,
  PATCHES,
  TASK_QUEUES,
  cancelOrderSignal,
  idempotencyKey,
  sagaStatusQuery,
} from '../src/shared/saga-contract';

function retryPolicy(t: RetryTuning): RetryPolicy {
  return {
    initialInterval: t.initialIntervalMs,
    maximumInterval: t.maximumIntervalMs,
    backoffCoefficient: t.backoffCoefficient,
    maximumAttempts: t.maximumAttempts,
    nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES],
  };
}

/** Options for one service's activities on its task queue; forward steps and compensations differ in retry. */
function activityOptions(taskQueue: string, timeoutMs: number, retry: RetryTuning): ActivityOptions {
  return {
    taskQueue,
    startToCloseTimeout: timeoutMs,
    retry: retryPolicy(retry),
    // On cancellation, wait until the activity has really stopped before compensating, so an
    // attempt still running cannot take effect after its compensation.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  };
}

/** The failure's type string: the ApplicationFailure type when there is one, else the SDK's name. */
function describeFailure(err: unknown, step: SagaStep | CompensationStep): SagaFailureInfo {
  if (isCancellation(err)) return { type: FailureType.Cancelled, message: 'saga cancelled', step };
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure && cause.type) return { type: cause.type, message: cause.message, step };
  if (cause instanceof Error) return { type: cause.name, message: cause.message, step };
  return { type: 'Unknown', message: String(cause), step };
}

interface Compensation {
  step: CompensationStep;
  run: () => Promise<unknown>;
}

/**
 * Hooks that let the replay tests build a deliberately changed saga from this very code. The
 * production workflow passes none.
 */
export interface SagaVariant {
  /** Decides whether to send the v2 "order received" notice; production asks patched(). */
  sendReceivedNotice?: () => boolean;
}

/**
 * The saga's body, shared by {@link orderSaga} and the replay tests' deliberately broken variants.
 * Not a workflow itself: only `workflows/index.ts` exports workflows.
 */
export async function runOrderSaga(input: OrderSagaInput, variant: SagaVariant = {}): Promise<OrderSagaResult> {
  const { order } = input;
  const queues = input.taskQueues ?? TASK_QUEUES;
  const tuning: SagaTuning = { ...DEFAULT_SAGA_TUNING, ...input.tuning };
  const { workflowId } = workflowInfo();
  const { sagaMetrics } = proxySinks<SagaMetricsSinks>();
  const key = (step: Parameters<typeof idempotencyKey>[1]) => idempotencyKey(workflowId, step);

  const forward = (q: string) => activityOptions(q, tuning.activityTimeoutMs, tuning.forwardRetry);
  const undo = (q: string) => activityOptions(q, tuning.activityTimeoutMs, tuning.compensationRetry);
  const orders = proxyActivities<OrdersActivities>(forward(queues.orders));
  const inventory = proxyActivities<InventoryActivities>(forward(queues.inventory));
  const payments = proxyActivities<PaymentsActivities>(forward(queues.payments));
  const ordersUndo = proxyActivities<OrdersActivities>(undo(queues.orders));
  const inventoryUndo = proxyActivities<InventoryActivities>(undo(queues.inventory));
  const paymentsUndo = proxyActivities<PaymentsActivities>(undo(queues.payments));
  // Outcome notices are sent once the outcome is decided, so they get the long, patient policy.
  const notifications = proxyActivities<NotificationsActivities>(undo(queues.notifications));
  const courtesyNotices = proxyActivities<NotificationsActivities>(forward(queues.notifications));

  const status: SagaStatus = {
    orderId: order.orderId,
    state: 'RUNNING',
    currentStep: null,
    completedSteps: [],
    compensationsRun: [],
    failedCompensations: [],
    failure: null,
    cancelRequested: false,
    cancelIgnoredReason: null,
    notificationError: null,
  };
  setHandler(sagaStatusQuery, () => status);

  const forwardScope = new CancellationScope();
  let paymentCaptured = false;
  setHandler(cancelOrderSignal, ({ reason }) => {
    if (status.cancelRequested) return;
    if (paymentCaptured || status.state !== 'RUNNING') {
      // Past the point of no return: the customer has paid and the order goes through.
      status.cancelIgnoredReason = `cancel (${reason}) arrived after payment was captured`;
      return;
    }
    status.cancelRequested = true;
    log.info('saga cancel requested', { reason });
    forwardScope.cancel();
  });

  const compensations: Compensation[] = [];

  /**
   * Runs one forward step. Its compensation is registered before it starts: if the step fails in a
   * way that may have taken effect (timeout, retries exhausted, cancellation) it is undone too;
   * only business rejections that guarantee no effect drop it.
   */
  async function step<T>(name: SagaStep, run: () => Promise<T>, compensation?: Compensation): Promise<T> {
    // Cancelled between steps: the next step never starts, so it has nothing to compensate.
    if (forwardScope.consideredCancelled) throw new CancelledFailure('saga cancelled before ' + name);
    status.currentStep = name;
    if (compensation) compensations.push(compensation);
    try {
      const result = await run();
      status.completedSteps.push(name);
      return result;
    } catch (err) {
      const failure = describeFailure(err, name);
      if (compensation && NO_EFFECT_FAILURE_TYPES.includes(failure.type)) compensations.pop();
      status.failure = failure;
      throw err;
    }
  }

  try {
    await forwardScope.run(async () => {
      const created = await step(
        'createOrder',
        () => orders.createOrder({ idempotencyKey: key('createOrder'), order }),
        {
          step: 'failOrder',
          run: () =>
            ordersUndo.failOrder({
              idempotencyKey: key('failOrder'),
              orderId: order.orderId,
              reason: failureReason(status),
            }),
        },
      );
      // v2 sends a courtesy notice here. Histories recorded before it have no patch marker, so on
      // replay patched() is false for them and they take the v1 path: old runs stay deterministic.
      const sendReceivedNotice = variant.sendReceivedNotice ?? (() => patched(PATCHES.orderReceivedNotice));
      if (sendReceivedNotice()) {
        try {
          await courtesyNotices.notifyCustomer({
            idempotencyKey: key('notifyReceived'),
            orderId: order.orderId,
            customerId: order.customerId,
            kind: 'ORDER_RECEIVED',
          });
        } catch (err) {
          if (isCancellation(err)) throw err;
          // A courtesy notice must not fail the order; the failure stays visible in the status.
          status.notificationError = describeFailure(err, 'notifyCustomer').message;
        }
      }
      await step(
        'reserveStock',
        () =>
          inventory.reserveStock({
            idempotencyKey: key('reserveStock'),
            orderId: order.orderId,
            items: order.items.map(({ sku, quantity }) => ({ sku, quantity })),
          }),
        {
          step: 'releaseStock',
          run: () =>
            inventoryUndo.releaseStock({
              idempotencyKey: key('releaseStock'),
              reservationKey: key('reserveStock'),
              orderId: order.orderId,
            }),
        },
      );
      await step(
        'chargePayment',
        () =>
          payments.chargePayment({
            idempotencyKey: key('chargePayment'),
            orderId: order.orderId,
            amountMinor: created.totalMinor,
            currency: created.currency,
            paymentToken: order.paymentToken,
          }),
        {
          step: 'refundPayment',
          run: () =>
            paymentsUndo.refundPayment({
              idempotencyKey: key('refundPayment'),
              chargeKey: key('chargePayment'),
              orderId: order.orderId,
            }),
        },
      );
      paymentCaptured = true;
      await step('confirmOrder', () =>
        orders.confirmOrder({ idempotencyKey: key('confirmOrder'), orderId: order.orderId }),
      );
    });
  } catch (err) {
    if (!status.failure) status.failure = describeFailure(err, status.currentStep ?? 'createOrder');
    return compensate(err);
  }

  // The order is confirmed: the notice cannot undo anything, so its failure is reported, not compensated.
  status.currentStep = 'notifyCustomer';
  try {
    await notifications.notifyCustomer({
      idempotencyKey: key('notifyConfirmed'),
      orderId: order.orderId,
      customerId: order.customerId,
      kind: 'ORDER_CONFIRMED',
    });
    status.completedSteps.push('notifyCustomer');
  } catch (err) {
    status.notificationError = describeFailure(err, 'notifyCustomer').message;
    log.error('confirmation notice could not be sent', { orderId: order.orderId, error: status.notificationError });
  }
  status.state = 'CONFIRMED';
  status.currentStep = null;
  sagaMetrics.ended('CONFIRMED', input.eventOccurredAt);
  return { orderId: order.orderId, outcome: 'CONFIRMED', status };

  /** Undoes the completed steps last-in first-out, then tells the customer; nothing here can be cancelled. */
  async function compensate(cause: unknown): Promise<OrderSagaResult> {
    status.state = 'COMPENSATING';
    log.warn('saga compensating', { orderId: order.orderId, failure: status.failure });
    await CancellationScope.nonCancellable(async () => {
      const notifyFailure: Compensation = {
        step: 'notifyCustomer',
        run: () =>
          notifications.notifyCustomer({
            idempotencyKey: key('notifyFailed'),
            orderId: order.orderId,
            customerId: order.customerId,
            kind: 'ORDER_FAILED',
            reason: failureReason(status),
          }),
      };
      for (const c of [...compensations].reverse().concat(notifyFailure)) {
        status.currentStep = c.step;
        try {
          await c.run();
          status.compensationsRun.push(c.step);
          sagaMetrics.compensated(c.step);
        } catch (err) {
          // Keep unwinding the other steps: one stuck refund must not leave stock reserved too.
          status.failedCompensations.push(describeFailure(err, c.step));
        }
      }
    });
    status.currentStep = null;
    if (status.failedCompensations.length > 0) {
      status.state = 'COMPENSATION_FAILED';
      sagaMetrics.ended('COMPENSATION_FAILED', input.eventOccurredAt);
      const failed = status.failedCompensations.map((f) => `${f.step} (${f.type})`).join(', ');
      log.error('saga compensation failed', {
        orderId: order.orderId,
        failedCompensations: status.failedCompensations,
      });
      throw ApplicationFailure.create({
        message: `order ${order.orderId}: compensation failed: ${failed}`,
        type: FailureType.CompensationFailed,
        nonRetryable: true,
        details: [status],
        cause: cause instanceof Error ? cause : undefined,
      });
    }
    status.state = 'FAILED';
    sagaMetrics.ended('FAILED', input.eventOccurredAt);
    return { orderId: order.orderId, outcome: 'FAILED', status };
  }
}

function failureReason(status: SagaStatus): string {
  const f = status.failure;
  return f ? `${f.type}: ${f.message}` : 'unknown';
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
 * - A compensation that exhausts its retry policy fails the workflow with type CompensationFailed,
 *   details = the final {@link SagaStatus} (COMPENSATION_FAILED, with the failed steps).
 * - `sagaStatusQuery` returns the current step, completed steps and compensations run.
 */
export async function orderSaga(input: OrderSagaInput): Promise<OrderSagaResult> {
  return runOrderSaga(input);
}
