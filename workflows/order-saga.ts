import type { ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  allHandlersFinished,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxySinks,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';

import type { InventoryActivities } from '../src/services/inventory/inventory-activities';
import type { NotificationsActivities } from '../src/services/notifications/notifications-activities';
import type { OrdersActivities } from '../src/services/orders/orders-activities';
import type { PaymentsActivities } from '../src/services/payments/payments-activities';
import type {
  CompensationStep,
  OrderSagaInput,
  OrderSagaResult,
  ParkedDecision,
  RetryTuning,
  SagaFailureInfo,
  SagaMetricsSinks,
  SagaState,
  SagaStatus,
  SagaStep,
  SagaTuning,
} from '../src/shared/saga-contract';
import {
  BUSINESS_OUTCOME_FAILURE_TYPES,
  DEFAULT_SAGA_TUNING,
  FailureType,
  NO_EFFECT_FAILURE_TYPES,
  NON_RETRYABLE_FAILURE_TYPES,
  PATCHES,
  TASK_QUEUES,
  cancelOrderSignal,
  decideParkedUpdate,
  decisionProblem,
  describeItems,
  formatMoney,
  idempotencyKey,
  orderTotalMinor,
  sagaStatusQuery,
} from '../src/shared/saga-contract';
import {
  currencyKey,
  customerIdKey,
  failedStepKey,
  orderStateKey,
  orderTotalMinorKey,
  parkedSinceKey,
} from '../src/shared/search-attributes';

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

/** Activity options with a one-line summary the Web UI shows on the scheduled activity. */
function summarised(options: ActivityOptions, summary: string): ActivityOptions {
  return { ...options, summary };
}

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
  // Every call carries a summary for the Web UI ("charge 27.40 EUR"), hence one proxy per call site.
  const total = orderTotalMinor(order);
  const money = formatMoney(total, order.currency);
  const items = describeItems(order.items);
  const orders = (summary: string) => proxyActivities<OrdersActivities>(summarised(forward(queues.orders), summary));
  const inventory = (summary: string) =>
    proxyActivities<InventoryActivities>(summarised(forward(queues.inventory), summary));
  const payments = (summary: string) =>
    proxyActivities<PaymentsActivities>(summarised(forward(queues.payments), summary));
  const ordersUndo = (summary: string) => proxyActivities<OrdersActivities>(summarised(undo(queues.orders), summary));
  const inventoryUndo = (summary: string) =>
    proxyActivities<InventoryActivities>(summarised(undo(queues.inventory), summary));
  const paymentsUndo = (summary: string) =>
    proxyActivities<PaymentsActivities>(summarised(undo(queues.payments), summary));
  // Outcome notices are sent once the outcome is decided, so they get the long, patient policy.
  const notifications = (summary: string) =>
    proxyActivities<NotificationsActivities>(summarised(undo(queues.notifications), summary));
  const courtesyNotices = (summary: string) =>
    proxyActivities<NotificationsActivities>(summarised(forward(queues.notifications), summary));

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

  // v3 keeps search attributes current so the Web UI can list sagas by state, failed step, customer or
  // total. Runs recorded before it have no marker, take `false` on replay, and upsert nothing.
  const visible = (variant.publishSearchAttributes ?? (() => patched(PATCHES.orderSearchAttributes)))();
  /** Moves the saga to `state` in its status, its search attributes and its current details. */
  function enter(state: SagaState, details: string, extra: { failedStep?: string; parkedSince?: Date | null } = {}) {
    status.state = state;
    setCurrentDetails(details);
    if (!visible) return;
    upsertSearchAttributes([
      { key: orderStateKey, value: state },
      ...(extra.failedStep !== undefined ? [{ key: failedStepKey, value: extra.failedStep }] : []),
      ...(extra.parkedSince !== undefined ? [{ key: parkedSinceKey, value: extra.parkedSince }] : []),
    ]);
  }
  if (visible) {
    upsertSearchAttributes([
      { key: customerIdKey, value: order.customerId },
      { key: currencyKey, value: order.currency },
      // A malformed order (fractions, overflow) fails in createOrder; its total is simply not listed.
      ...(Number.isSafeInteger(total) ? [{ key: orderTotalMinorKey, value: total }] : []),
    ]);
  }
  enter('RUNNING', `Running: order ${order.orderId} for ${order.customerId}, ${money} (${items})`);

  let inbox: { decision: ParkedDecision; seq: number } | null = null;
  let seq = 0;
  // Operator decisions (decideParkedUpdate). Registered from the start so a decision sent to a saga that
  // is not parked is refused at once instead of waiting in Temporal's buffer until it parks.
  // seq → null once the decision took effect, or why it could not be recorded.
  const answers = new Map<number, string | null>();
  setHandler(
    decideParkedUpdate,
    async (decision) => {
      const mine = ++seq;
      inbox = { decision, seq: mine };
      await condition(() => answers.has(mine));
      const problem = answers.get(mine);
      if (problem) {
        throw ApplicationFailure.create({
          type: FailureType.DecisionNotRecorded,
          nonRetryable: true,
          message: problem,
        });
      }
      return status;
    },
    {
      validator: (decision) => {
        if (status.state !== 'PARKED' || inbox !== null) {
          throw ApplicationFailure.create({
            type: FailureType.SagaNotParked,
            nonRetryable: true,
            message: `order ${order.orderId} is not parked (state ${status.state}${inbox ? ', a decision is being applied' : ''})`,
          });
        }
        const problem = decisionProblem(decision);
        if (problem) {
          throw ApplicationFailure.create({ type: FailureType.InvalidDecision, nonRetryable: true, message: problem });
        }
      },
    },
  );

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
    setCurrentDetails(`Running **${name}** for order ${order.orderId} (${money})`);
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
        () =>
          orders(`create order ${order.orderId} for ${order.customerId}: ${money}`).createOrder({
            idempotencyKey: key('createOrder'),
            order,
          }),
        {
          step: 'failOrder',
          run: () =>
            ordersUndo(`fail order ${order.orderId}: ${status.failure?.type ?? 'unknown'}`).failOrder({
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
          await courtesyNotices(`tell ${order.customerId}: order received`).notifyCustomer({
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
      await step(
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
      paymentCaptured = true;
      await step('confirmOrder', () =>
        orders(`confirm order ${order.orderId}`).confirmOrder({
          idempotencyKey: key('confirmOrder'),
          orderId: order.orderId,
        }),
      );
    });
  } catch (err) {
    if (!status.failure) status.failure = describeFailure(err, status.currentStep ?? 'createOrder');
    return compensate(err);
  }

  // The order is confirmed: the notice cannot undo anything, so its failure is reported, not compensated.
  status.currentStep = 'notifyCustomer';
  setCurrentDetails(`Confirmed: telling ${order.customerId}`);
  try {
    await notifications(`tell ${order.customerId}: order confirmed`).notifyCustomer({
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
  status.currentStep = null;
  enter('CONFIRMED', `Confirmed: order ${order.orderId}, ${money} charged`);
  sagaMetrics.ended('CONFIRMED', input.eventOccurredAt);
  return { orderId: order.orderId, outcome: 'CONFIRMED', status };

  /** Undoes the completed steps last-in first-out, then tells the customer; nothing here can be cancelled. */
  async function compensate(cause: unknown): Promise<OrderSagaResult> {
    enter('COMPENSATING', `Compensating after ${status.failure?.step ?? 'a failure'}: ${failureReason(status)}`, {
      failedStep: status.failure?.step ?? '',
    });
    // A declined card or missing stock is the saga working as designed: info, not a warning.
    const expected = BUSINESS_OUTCOME_FAILURE_TYPES.includes(status.failure?.type ?? '');
    if (expected) log.info('saga compensating', { orderId: order.orderId, failure: status.failure });
    else log.warn('saga compensating', { orderId: order.orderId, failure: status.failure });
    const notifyFailure: Compensation = {
      step: 'notifyCustomer',
      run: () =>
        notifications(`tell ${order.customerId}: order failed`).notifyCustomer({
          idempotencyKey: key('notifyFailed'),
          orderId: order.orderId,
          customerId: order.customerId,
          kind: 'ORDER_FAILED',
          reason: failureReason(status),
        }),
    };
    const failed = await runCompensations([...compensations].reverse().concat(notifyFailure));
    if (failed.length > 0) {
      const park = variant.parkOnCompensationFailure ?? (() => patched(PATCHES.parkOnCompensationFailure));
      if (park()) return parkUntilDecided(failed, cause);
      status.state = 'COMPENSATION_FAILED';
      sagaMetrics.ended('COMPENSATION_FAILED', input.eventOccurredAt);
      log.error('saga compensation failed', {
        orderId: order.orderId,
        failedCompensations: status.failedCompensations,
      });
      throw compensationFailed(cause);
    }
    return endFailed('FAILED', `Failed: ${failureReason(status)}; every completed step undone`);
  }

  /**
   * Runs compensations in the given order in a non-cancellable scope and returns the ones that
   * exhausted their retries; one stuck step does not stop the others.
   */
  async function runCompensations(list: Compensation[]): Promise<Compensation[]> {
    const failed: Compensation[] = [];
    status.failedCompensations = [];
    await CancellationScope.nonCancellable(async () => {
      for (const c of list) {
        status.currentStep = c.step;
        setCurrentDetails(`Compensating: **${c.step}** of order ${order.orderId}`);
        try {
          await c.run();
          status.compensationsRun.push(c.step);
          sagaMetrics.compensated(c.step);
        } catch (err) {
          // Keep unwinding the other steps: one stuck refund must not leave stock reserved too.
          status.failedCompensations.push(describeFailure(err, c.step));
          failed.push(c);
        }
      }
    });
    status.currentStep = null;
    return failed;
  }

  function compensationFailed(cause: unknown): ApplicationFailure {
    const failed = status.failedCompensations.map((f) => `${f.step} (${f.type})`).join(', ');
    return ApplicationFailure.create({
      message: `order ${order.orderId}: compensation failed: ${failed}`,
      type: FailureType.CompensationFailed,
      nonRetryable: true,
      details: [status],
      cause: cause instanceof Error ? cause : undefined,
    });
  }

  function endFailed(state: 'FAILED' | 'RESOLVED_MANUALLY', details: string, wasParked = false): OrderSagaResult {
    enter(state, details, wasParked ? { parkedSince: null } : {});
    sagaMetrics.ended(state, input.eventOccurredAt);
    return { orderId: order.orderId, outcome: 'FAILED', status };
  }

  /**
   * v3: the saga stays open, PARKED, until an operator decides (decideParkedUpdate). RETRY runs the
   * failed compensations again (parking again if one still fails), RESOLVE_MANUALLY ends it as
   * undone by hand, ABANDON ends it failed as before. Every decision is recorded as an
   * order.parked-decision event before it takes effect.
   */
  async function parkUntilDecided(initiallyFailed: Compensation[], cause: unknown): Promise<OrderSagaResult> {
    let pending = initiallyFailed;
    status.decisions = [];
    for (let round = 1; ; round++) {
      const since = Date.now();
      status.parked = { since, round };
      const steps = pending.map((c) => c.step);
      const waiting = status.failedCompensations.map((f) => `${f.step} (${f.type}: ${f.message})`).join(', ');
      enter(
        'PARKED',
        `Parked since ${new Date(since).toISOString()}: ${waiting} exhausted its retries. ` +
          `Waiting for an operator: orders parked retry | resolve | abandon ${order.orderId}`,
        { failedStep: steps[0] ?? '', parkedSince: new Date(since) },
      );
      sagaMetrics.parked(steps);
      log.error('saga parked: compensation exhausted its retries', {
        orderId: order.orderId,
        round,
        failedCompensations: status.failedCompensations,
      });

      // Wait for a decision that can be recorded; one that cannot leaves the saga parked as it was.
      let taken: { decision: ParkedDecision; seq: number; reason: string | null; at: number } | undefined;
      while (!taken) {
        await condition(() => inbox !== null);
        const next = inbox as unknown as { decision: ParkedDecision; seq: number };
        const { decision } = next;
        const reason = decision.reason?.trim() ? decision.reason.trim() : null;
        const at = Date.now();
        try {
          await CancellationScope.nonCancellable(() =>
            ordersUndo(`record ${decision.decision} by ${decision.operator}`).recordParkedDecision({
              idempotencyKey: key(`parkedDecision-${round}`),
              orderId: order.orderId,
              decision: decision.decision,
              operator: decision.operator.trim(),
              reason,
              failedSteps: steps,
              round,
              decidedAt: at,
            }),
          );
          taken = { ...next, reason, at };
        } catch (err) {
          const why = describeFailure(err, 'failOrder').message;
          log.error('parked saga decision could not be recorded', { orderId: order.orderId, error: why });
          answers.set(next.seq, `the decision could not be recorded (${why}); the saga stays parked`);
          inbox = null;
        }
      }
      const { decision, reason } = taken;
      const operator = decision.operator.trim();
      status.decisions.push({ decision: decision.decision, operator, reason, round, at: taken.at, failedSteps: steps });
      log.warn('parked saga decision', { orderId: order.orderId, round, decision: decision.decision, operator });
      status.parked = null;
      const answer = () => {
        answers.set(taken.seq, null);
        inbox = null;
      };

      if (decision.decision === 'RESOLVE_MANUALLY') {
        const result = endFailed('RESOLVED_MANUALLY', `Resolved by hand by ${operator}: ${reason ?? ''}`, true);
        answer();
        await condition(allHandlersFinished);
        return result;
      }
      if (decision.decision === 'ABANDON') {
        enter('ABANDONED', `Abandoned by ${operator}: ${reason ?? ''}`, { parkedSince: null });
        sagaMetrics.ended('ABANDONED', input.eventOccurredAt);
        answer();
        await condition(allHandlersFinished);
        throw compensationFailed(cause);
      }
      // RETRY: the same compensations, same idempotency keys, in the same last-in first-out order.
      enter('COMPENSATING', `Retrying ${steps.join(', ')} (decided by ${operator})`, { parkedSince: null });
      answer();
      pending = await runCompensations(pending);
      if (pending.length === 0) {
        await condition(allHandlersFinished);
        return endFailed('FAILED', `Failed: ${failureReason(status)}; undone after a retry by ${operator}`);
      }
    }
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
