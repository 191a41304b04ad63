/**
 * The machinery under the order saga: forward steps with their compensations, the saga's status
 * (query, current details, search attributes), cancellation up to a point of no return, last-in
 * first-out compensation in a non-cancellable scope, and parking for an operator's decision when a
 * compensation cannot succeed. `order-saga.ts` declares the business sequence on top of it.
 *
 * Sandbox code: loaded by the workflow bundle, so Temporal's workflow API, the shared contract and
 * type-only imports, nothing else. Every workflow command this module issues is part of recorded
 * histories: changing what or in which order it schedules, upserts or asks patched() needs a patch.
 */
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { ActivityInterfaceFor, ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import {
  ActivityCancellationType,
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  isCancellation,
  log,
  proxyActivities,
  proxySinks,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';

import type {
  CompensationStep,
  OrderSagaResult,
  ParkedDecision,
  RetryTuning,
  SagaFailureInfo,
  SagaMetricsSinks,
  SagaState,
  SagaStatus,
  SagaStep,
} from '../src/shared/saga-contract';
import {
  BUSINESS_OUTCOME_FAILURE_TYPES,
  cancelOrderSignal,
  decideParkedUpdate,
  decisionProblem,
  FailureType,
  NO_EFFECT_FAILURE_TYPES,
  NON_RETRYABLE_FAILURE_TYPES,
  SAGA_STEPS,
  sagaStatusQuery,
} from '../src/shared/saga-contract';
import { failedStepKey, orderStateKey, parkedSinceKey } from '../src/shared/search-attributes';

/** How one completed (or possibly completed) step is undone if the saga fails. */
export interface Compensation {
  step: CompensationStep;
  run: () => Promise<unknown>;
}

/** An operator decision the saga is about to take, handed to {@link SagaOptions.recordDecision}. */
export interface DecisionToRecord {
  decision: ParkedDecision;
  /** The decision's operator, trimmed. */
  operator: string;
  /** The decision's reason, trimmed; null when none was given. */
  reason: string | null;
  /** Which parking this decision ends: 1, then 2 after a retry that parked again… */
  round: number;
  /** The compensations the saga is parked on. */
  failedSteps: CompensationStep[];
  /** Workflow time of the decision (epoch ms). */
  decidedAt: number;
}

export interface SagaOptions {
  orderId: string;
  /** The order's total for people ("27.40 EUR"), shown with every forward step. */
  amount: string;
  /** From the saga's input, for the event-to-saga-complete latency metric. */
  eventOccurredAt: number | undefined;
  /**
   * Whether the saga keeps its search attributes current. Asked once, first thing: a patched()
   * decision in production, so its marker stays where recorded histories have it.
   */
  publishSearchAttributes: () => boolean;
  /** Whether an exhausted compensation parks the saga (else it fails it); asked only when one is exhausted. */
  parkOnCompensationFailure: () => boolean;
  /** Search attributes the Web UI lists the saga by, set once at the start when published. */
  listedBy: SearchAttributeUpdatePair[];
  /** Current details while the forward steps run. */
  runningDetails: string;
  /** What makes a later cancel too late, for the ignored cancel's reason ("payment was captured"). */
  pointOfNoReturn: string;
  /** Writes an operator's decision down (as an audit event) before the saga acts on it. */
  recordDecision: (taken: DecisionToRecord) => Promise<unknown>;
}

/**
 * Options for the activities of one service on its task queue; forward steps and compensations
 * differ only in their retry tuning.
 */
function activityOptions(taskQueue: string, timeoutMs: number, retry: RetryTuning): ActivityOptions {
  const retryPolicy: RetryPolicy = {
    initialInterval: retry.initialIntervalMs,
    maximumInterval: retry.maximumIntervalMs,
    backoffCoefficient: retry.backoffCoefficient,
    maximumAttempts: retry.maximumAttempts,
    nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES],
  };
  return {
    taskQueue,
    startToCloseTimeout: timeoutMs,
    retry: retryPolicy,
    // On cancellation, wait until the activity has really stopped before compensating, so an
    // attempt still running cannot take effect after its compensation.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  };
}

/**
 * A service's activities on `taskQueue`, one proxy per call so every call carries the one-line
 * summary the Web UI shows on the scheduled activity ("charge 27.40 EUR").
 */
export function summarisedActivities<A>(
  taskQueue: string,
  timeoutMs: number,
  retry: RetryTuning,
): (summary: string) => ActivityInterfaceFor<A> {
  return (summary) => proxyActivities<A>({ ...activityOptions(taskQueue, timeoutMs, retry), summary });
}

/** The failure's type string: the ApplicationFailure type when there is one, else the SDK's name. */
export function describeFailure(err: unknown, step: SagaStep | CompensationStep): SagaFailureInfo {
  if (isCancellation(err)) return { type: FailureType.Cancelled, message: 'saga cancelled', step };
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure && cause.type) return { type: cause.type, message: cause.message, step };
  if (cause instanceof Error) return { type: cause.name, message: cause.message, step };
  return { type: 'Unknown', message: String(cause), step };
}

/** "PaymentDeclined: card declined", or "unknown" before anything failed. */
export function failureReason(status: SagaStatus): string {
  const f = status.failure;
  return f ? `${f.type}: ${f.message}` : 'unknown';
}

/**
 * One run of the saga. Constructing it registers the status query, the cancel signal and the
 * parked-decision update and publishes the RUNNING state; then the workflow runs its steps in
 * {@link Saga.forward} and either ends with {@link Saga.confirmed} or hands the failure to
 * {@link Saga.compensate}.
 */
export class Saga {
  /** What `sagaStatus` answers; also the result's and a CompensationFailed failure's details. */
  readonly status: SagaStatus;
  private readonly options: SagaOptions;
  private readonly metrics = proxySinks<SagaMetricsSinks>().sagaMetrics;
  private readonly visible: boolean;
  /** Undo actions of the steps started so far, in the order they were registered. */
  private readonly compensations: Compensation[] = [];
  /** The forward steps run in this scope; a cancel before the point of no return cancels it. */
  private readonly forwardScope: CancellationScope;
  private pastPointOfNoReturn = false;
  /** The operator decision being applied, set by the update handler and taken by the parked loop. */
  private inbox: { decision: ParkedDecision; seq: number } | null = null;
  private seq = 0;
  /** Update seq → null once its decision took effect, or why it could not be recorded. */
  private readonly answers = new Map<number, string | null>();

  constructor(options: SagaOptions) {
    this.options = options;
    const status: SagaStatus = {
      orderId: options.orderId,
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
    this.status = status;
    setHandler(sagaStatusQuery, () => status);

    this.visible = options.publishSearchAttributes();
    if (this.visible) upsertSearchAttributes(options.listedBy);
    this.enter('RUNNING', options.runningDetails);

    // Operator decisions (decideParkedUpdate). Registered from the start so a decision sent to a saga
    // that is not parked is refused at once instead of waiting in Temporal's buffer until it parks.
    setHandler(
      decideParkedUpdate,
      async (decision) => {
        const mine = ++this.seq;
        this.inbox = { decision, seq: mine };
        await condition(() => this.answers.has(mine));
        const problem = this.answers.get(mine);
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
          if (status.state !== 'PARKED' || this.inbox !== null) {
            throw ApplicationFailure.create({
              type: FailureType.SagaNotParked,
              nonRetryable: true,
              message: `order ${options.orderId} is not parked (state ${status.state}${this.inbox ? ', a decision is being applied' : ''})`,
            });
          }
          const problem = decisionProblem(decision);
          if (problem) {
            throw ApplicationFailure.create({
              type: FailureType.InvalidDecision,
              nonRetryable: true,
              message: problem,
            });
          }
        },
      },
    );

    this.forwardScope = new CancellationScope();
    setHandler(cancelOrderSignal, ({ reason }) => {
      if (status.cancelRequested) return;
      if (this.pastPointOfNoReturn || status.state !== 'RUNNING') {
        // Past the point of no return: the order goes through.
        status.cancelIgnoredReason = `cancel (${reason}) arrived after ${options.pointOfNoReturn}`;
        return;
      }
      status.cancelRequested = true;
      log.info('saga cancel requested', { reason });
      this.forwardScope.cancel();
    });
  }

  /** Why the forward path stopped, once it did. */
  get failure(): SagaFailureInfo | null {
    return this.status.failure;
  }

  /**
   * Runs the forward steps in the cancellable scope. On any failure or cancellation the failure is
   * recorded in the status (the step that was running or about to start) and rethrown.
   */
  async forward(steps: () => Promise<void>): Promise<void> {
    try {
      await this.forwardScope.run(steps);
    } catch (err) {
      if (!this.status.failure) this.status.failure = describeFailure(err, this.status.currentStep ?? SAGA_STEPS[0]);
      throw err;
    }
  }

  /**
   * Runs one forward step. Its compensation is registered before it starts: if the step fails in a
   * way that may have taken effect (timeout, retries exhausted, cancellation) it is undone too;
   * only business rejections that guarantee no effect drop it.
   */
  async step<T>(name: SagaStep, run: () => Promise<T>, compensation?: Compensation): Promise<T> {
    const { status } = this;
    // Cancelled between steps: the next step never starts, so it has nothing to compensate.
    if (this.forwardScope.consideredCancelled) throw new CancelledFailure('saga cancelled before ' + name);
    status.currentStep = name;
    setCurrentDetails(`Running **${name}** for order ${this.options.orderId} (${this.options.amount})`);
    if (compensation) this.compensations.push(compensation);
    try {
      const result = await run();
      status.completedSteps.push(name);
      return result;
    } catch (err) {
      const failure = describeFailure(err, name);
      if (compensation && NO_EFFECT_FAILURE_TYPES.includes(failure.type)) this.compensations.pop();
      status.failure = failure;
      throw err;
    }
  }

  /** From here on a cancel is ignored (and the reason recorded): the forward steps run to the end. */
  passPointOfNoReturn(): void {
    this.pastPointOfNoReturn = true;
  }

  /**
   * A courtesy side step during the forward run: not a saga step and never compensated; its failure
   * is recorded in the status and does not fail the order, a cancellation still stops the saga.
   */
  async courtesy(step: SagaStep, run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.status.notificationError = describeFailure(err, step).message;
    }
  }

  /**
   * A step once the outcome is decided: nothing can undo it, so its failure is reported (status and
   * error log), not compensated.
   */
  async afterOutcome(step: SagaStep, details: string, run: () => Promise<unknown>): Promise<void> {
    const { status } = this;
    status.currentStep = step;
    setCurrentDetails(details);
    try {
      await run();
      status.completedSteps.push(step);
    } catch (err) {
      status.notificationError = describeFailure(err, step).message;
      log.error('confirmation notice could not be sent', {
        orderId: this.options.orderId,
        error: status.notificationError,
      });
    }
    status.currentStep = null;
  }

  /** Ends the saga CONFIRMED. */
  confirmed(details: string): OrderSagaResult {
    this.enter('CONFIRMED', details);
    this.metrics.ended('CONFIRMED', this.options.eventOccurredAt);
    return { orderId: this.options.orderId, outcome: 'CONFIRMED', status: this.status };
  }

  /**
   * Undoes the steps last-in first-out, then runs `lastly` (the failure notice); nothing here can be
   * cancelled. Ends FAILED when every one succeeded; otherwise parks the saga for an operator, or in
   * runs from before parking fails the workflow with CompensationFailed.
   */
  async compensate(cause: unknown, lastly: Compensation): Promise<OrderSagaResult> {
    const { status } = this;
    this.enter('COMPENSATING', `Compensating after ${status.failure?.step ?? 'a failure'}: ${failureReason(status)}`, {
      failedStep: status.failure?.step ?? '',
    });
    // A declined card or missing stock is the saga working as designed: info, not a warning.
    const expected = BUSINESS_OUTCOME_FAILURE_TYPES.includes(status.failure?.type ?? '');
    if (expected) log.info('saga compensating', { orderId: this.options.orderId, failure: status.failure });
    else log.warn('saga compensating', { orderId: this.options.orderId, failure: status.failure });
    const failed = await this.runCompensations([...this.compensations].reverse().concat(lastly));
    if (failed.length > 0) {
      if (this.options.parkOnCompensationFailure()) return this.parkUntilDecided(failed, cause);
      status.state = 'COMPENSATION_FAILED';
      this.metrics.ended('COMPENSATION_FAILED', this.options.eventOccurredAt);
      log.error('saga compensation failed', {
        orderId: this.options.orderId,
        failedCompensations: status.failedCompensations,
      });
      throw this.compensationFailed(cause);
    }
    return this.endFailed('FAILED', `Failed: ${failureReason(status)}; every completed step undone`);
  }

  /** Moves the saga to `state` in its status, its search attributes and its current details. */
  private enter(
    state: SagaState,
    details: string,
    extra: { failedStep?: string; parkedSince?: Date | null } = {},
  ): void {
    this.status.state = state;
    setCurrentDetails(details);
    if (!this.visible) return;
    upsertSearchAttributes([
      { key: orderStateKey, value: state },
      ...(extra.failedStep !== undefined ? [{ key: failedStepKey, value: extra.failedStep }] : []),
      ...(extra.parkedSince !== undefined ? [{ key: parkedSinceKey, value: extra.parkedSince }] : []),
    ]);
  }

  /**
   * Runs compensations in the given order in a non-cancellable scope and returns the ones that
   * exhausted their retries; one stuck step does not stop the others.
   */
  private async runCompensations(list: Compensation[]): Promise<Compensation[]> {
    const { status } = this;
    const failed: Compensation[] = [];
    status.failedCompensations = [];
    await CancellationScope.nonCancellable(async () => {
      for (const c of list) {
        status.currentStep = c.step;
        setCurrentDetails(`Compensating: **${c.step}** of order ${this.options.orderId}`);
        try {
          await c.run();
          status.compensationsRun.push(c.step);
          this.metrics.compensated(c.step);
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

  private compensationFailed(cause: unknown): ApplicationFailure {
    const failed = this.status.failedCompensations.map((f) => `${f.step} (${f.type})`).join(', ');
    return ApplicationFailure.create({
      message: `order ${this.options.orderId}: compensation failed: ${failed}`,
      type: FailureType.CompensationFailed,
      nonRetryable: true,
      details: [this.status],
      cause: cause instanceof Error ? cause : undefined,
    });
  }

  private endFailed(state: 'FAILED' | 'RESOLVED_MANUALLY', details: string, wasParked = false): OrderSagaResult {
    this.enter(state, details, wasParked ? { parkedSince: null } : {});
    this.metrics.ended(state, this.options.eventOccurredAt);
    return { orderId: this.options.orderId, outcome: 'FAILED', status: this.status };
  }

  /**
   * v3: the saga stays open, PARKED, until an operator decides (decideParkedUpdate). RETRY runs the
   * failed compensations again (parking again if one still fails), RESOLVE_MANUALLY ends it as
   * undone by hand, ABANDON ends it failed as before. Every decision is recorded (see
   * {@link SagaOptions.recordDecision}) before it takes effect.
   */
  private async parkUntilDecided(initiallyFailed: Compensation[], cause: unknown): Promise<OrderSagaResult> {
    const { status } = this;
    const { orderId } = this.options;
    let pending = initiallyFailed;
    status.decisions = [];
    for (let round = 1; ; round++) {
      const since = Date.now();
      status.parked = { since, round };
      const steps = pending.map((c) => c.step);
      const waiting = status.failedCompensations.map((f) => `${f.step} (${f.type}: ${f.message})`).join(', ');
      this.enter(
        'PARKED',
        `Parked since ${new Date(since).toISOString()}: ${waiting} exhausted its retries. ` +
          `Waiting for an operator: orders parked retry | resolve | abandon ${orderId}`,
        { failedStep: steps[0] ?? '', parkedSince: new Date(since) },
      );
      this.metrics.parked(steps);
      log.error('saga parked: compensation exhausted its retries', {
        orderId,
        round,
        failedCompensations: status.failedCompensations,
      });

      // Wait for a decision that can be recorded; one that cannot leaves the saga parked as it was.
      let taken: { decision: ParkedDecision; seq: number; reason: string | null; at: number } | undefined;
      while (!taken) {
        await condition(() => this.inbox !== null);
        const next = this.inbox as unknown as { decision: ParkedDecision; seq: number };
        const { decision } = next;
        const reason = decision.reason?.trim() ? decision.reason.trim() : null;
        const at = Date.now();
        try {
          await CancellationScope.nonCancellable(() =>
            this.options.recordDecision({
              decision,
              operator: decision.operator.trim(),
              reason,
              round,
              failedSteps: steps,
              decidedAt: at,
            }),
          );
          taken = { ...next, reason, at };
        } catch (err) {
          const why = describeFailure(err, 'failOrder').message;
          log.error('parked saga decision could not be recorded', { orderId, error: why });
          this.answers.set(next.seq, `the decision could not be recorded (${why}); the saga stays parked`);
          this.inbox = null;
        }
      }
      const { decision, reason } = taken;
      const operator = decision.operator.trim();
      status.decisions.push({ decision: decision.decision, operator, reason, round, at: taken.at, failedSteps: steps });
      log.warn('parked saga decision', { orderId, round, decision: decision.decision, operator });
      status.parked = null;
      const answer = () => {
        this.answers.set(taken.seq, null);
        this.inbox = null;
      };

      if (decision.decision === 'RESOLVE_MANUALLY') {
        const result = this.endFailed('RESOLVED_MANUALLY', `Resolved by hand by ${operator}: ${reason ?? ''}`, true);
        answer();
        await condition(allHandlersFinished);
        return result;
      }
      if (decision.decision === 'ABANDON') {
        this.enter('ABANDONED', `Abandoned by ${operator}: ${reason ?? ''}`, { parkedSince: null });
        this.metrics.ended('ABANDONED', this.options.eventOccurredAt);
        answer();
        await condition(allHandlersFinished);
        throw this.compensationFailed(cause);
      }
      // RETRY: the same compensations, same idempotency keys, in the same last-in first-out order.
      this.enter('COMPENSATING', `Retrying ${steps.join(', ')} (decided by ${operator})`, { parkedSince: null });
      answer();
      pending = await this.runCompensations(pending);
      if (pending.length === 0) {
        await condition(allHandlersFinished);
        return this.endFailed('FAILED', `Failed: ${failureReason(status)}; undone after a retry by ${operator}`);
      }
    }
  }
}
