/**
 * The order saga's contract, shared by workflows, workers and clients.
 *
 * This module is loaded inside Temporal's workflow sandbox, so it may import only
 * `@temporalio/workflow` definitions and plain TypeScript: no Node builtins, no I/O.
 */
import type { Sinks } from '@temporalio/workflow';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

import type { ServiceName } from '../services/registry';
import { SERVICE_REGISTRY } from '../services/registry';

/** Task queue of the orchestrator (workflow code only) and of each service's activity worker. */
export type SagaTaskQueues = { saga: string } & Record<ServiceName, string>;

/**
 * Task queue names under an optional prefix. Production uses no prefix; tests and benchmarks pass a
 * unique one so their workers never pick up each other's tasks.
 */
export function taskQueuesFor(prefix = ''): SagaTaskQueues {
  const p = prefix ? `${prefix}.` : '';
  const services = Object.fromEntries(SERVICE_REGISTRY.map((s) => [s.name, `${p}${s.taskQueue}`]));
  return { saga: `${p}order-saga`, ...(services as Record<ServiceName, string>) };
}

export const TASK_QUEUES: SagaTaskQueues = taskQueuesFor();

/** Workflow type name of the saga, for clients that start it by name (e.g. the Kafka ingress). */
export const ORDER_SAGA_WORKFLOW_TYPE = 'orderSaga';

/** One saga per order: the workflow id is the dedupe key for duplicate `order.placed` events. */
export function orderWorkflowId(orderId: string): string {
  return `order-${orderId}`;
}

/** The order a saga's workflow id stands for (inverse of {@link orderWorkflowId}); undefined for other ids. */
export function orderIdFromWorkflowId(workflowId: string): string | undefined {
  return workflowId.startsWith('order-') ? workflowId.slice('order-'.length) : undefined;
}

/** Forward steps, in the order the saga runs them. */
export const SAGA_STEPS = ['createOrder', 'reserveStock', 'chargePayment', 'confirmOrder', 'notifyCustomer'] as const;
export type SagaStep = (typeof SAGA_STEPS)[number];

/** Compensations; `notifyCustomer` here is the failure notice sent after the others. */
export type CompensationStep = 'releaseStock' | 'refundPayment' | 'failOrder' | 'notifyCustomer';

/**
 * Every side effect has its own key, so the two notices of one order (received, outcome) and a
 * step and its inverse never share one.
 */
export type IdempotencyStep =
  | 'createOrder'
  | 'reserveStock'
  | 'chargePayment'
  | 'confirmOrder'
  | 'notifyReceived'
  | 'notifyConfirmed'
  | 'releaseStock'
  | 'refundPayment'
  | 'failOrder'
  | 'notifyFailed'
  /** The operator decision that ended the saga's n-th parking (see {@link decideParkedUpdate}). */
  | `parkedDecision-${number}`;

/**
 * The idempotency key of one step of one saga. Derived from the workflow id (not the run id) so a
 * retried, reset or restarted run of the same order reuses the keys and cannot repeat an effect.
 */
export function idempotencyKey(workflowId: string, step: IdempotencyStep): string {
  return `${workflowId}/${step}`;
}

/** Failure `type` strings. Tests, clients and retry policies match on these, never on classes. */
export const FailureType = {
  /** The card gateway declined the charge. Business failure: retrying cannot help. */
  PaymentDeclined: 'PaymentDeclined',
  /** Not enough stock for at least one line; nothing was reserved. */
  OutOfStock: 'OutOfStock',
  /** The order itself is malformed (no lines, bad quantity, id reused with other content). */
  InvalidOrder: 'InvalidOrder',
  /** A state transition the order's current state does not allow (e.g. confirming a FAILED order). */
  OrderNotPending: 'OrderNotPending',
  /** An idempotency key arrived again with a different operation or request. */
  IdempotencyKeyReused: 'IdempotencyKeyReused',
  /** A late attempt of a step whose compensation already ran; the step must not take effect now. */
  StepVoided: 'StepVoided',
  /** The card gateway could not be reached or answered 5xx. Infrastructure: retried with backoff. */
  GatewayUnavailable: 'GatewayUnavailable',
  /** The saga could not undo a completed step: see the workflow failure's details. */
  CompensationFailed: 'CompensationFailed',
  /** The saga was cancelled (signal or Temporal cancellation) before payment was captured. */
  Cancelled: 'Cancelled',
  /** An operator decision sent to a saga that is not parked (or already has a decision under way). */
  SagaNotParked: 'SagaNotParked',
  /** An operator decision with a missing or unknown field (decision, operator, reason). */
  InvalidDecision: 'InvalidDecision',
  /** An accepted decision whose audit event could not be written; the saga stays parked. */
  DecisionNotRecorded: 'DecisionNotRecorded',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** Failures that retrying cannot fix; activities raise them non-retryable and policies list them too. */
/**
 * Failures that are expected business outcomes, not faults: a declined card, an item out of stock,
 * a customer's cancel. They end a saga as designed, so they are logged as info, never as warnings.
 */
export const BUSINESS_OUTCOME_FAILURE_TYPES: readonly string[] = [
  FailureType.PaymentDeclined,
  FailureType.OutOfStock,
  FailureType.Cancelled,
];

export const NON_RETRYABLE_FAILURE_TYPES: readonly string[] = [
  FailureType.PaymentDeclined,
  FailureType.OutOfStock,
  FailureType.InvalidOrder,
  FailureType.OrderNotPending,
  FailureType.IdempotencyKeyReused,
  FailureType.StepVoided,
];

/**
 * Business rejections that the service guarantees left nothing behind, so the rejected step itself
 * needs no compensation. Any other failure of a step (timeout, retries exhausted, cancellation) may
 * have taken effect, so the saga compensates that step too; every compensation is a no-op when
 * there is nothing to undo.
 */
export const NO_EFFECT_FAILURE_TYPES: readonly string[] = [
  FailureType.PaymentDeclined,
  FailureType.OutOfStock,
  FailureType.InvalidOrder,
];

/** One order line. Money is exact: integer minor units (cents) of `OrderDetails.currency`. */
export interface OrderItem {
  sku: string;
  quantity: number;
  unitPriceMinor: number;
}

export interface OrderDetails {
  orderId: string;
  customerId: string;
  /** ISO 4217 code, e.g. 'EUR'. */
  currency: string;
  items: OrderItem[];
  /** Tokenised card reference understood by the card gateway (never a card number). */
  paymentToken: string;
  /**
   * From order.placed v2; carried into order.confirmed v2 for the loyalty service. Optional: inputs
   * of sagas started before it existed lack it, which means not a member.
   */
  isLoyaltyMember?: boolean;
}

export interface RetryTuning {
  initialIntervalMs: number;
  maximumIntervalMs: number;
  backoffCoefficient: number;
  /** Attempts before the step counts as failed; 0 means unlimited. */
  maximumAttempts: number;
}

/** Timeouts and retry policies of the saga's activities. Part of the input so a run keeps its policy. */
export interface SagaTuning {
  /** Longest a single activity attempt may run before Temporal retries it elsewhere. */
  activityTimeoutMs: number;
  /** Forward steps: infrastructure failures retry with backoff, then the saga compensates. */
  forwardRetry: RetryTuning;
  /** Compensations and notices: retried far longer; exhausting this parks the saga (PARKED). */
  compensationRetry: RetryTuning;
}

export const DEFAULT_SAGA_TUNING: SagaTuning = {
  activityTimeoutMs: 30_000,
  forwardRetry: { initialIntervalMs: 500, maximumIntervalMs: 10_000, backoffCoefficient: 2, maximumAttempts: 10 },
  compensationRetry: {
    initialIntervalMs: 1_000,
    maximumIntervalMs: 60_000,
    backoffCoefficient: 2,
    maximumAttempts: 50,
  },
};

export interface OrderSagaInput {
  order: OrderDetails;
  /** Defaults to {@link TASK_QUEUES}; tests and benchmarks isolate themselves with their own. */
  taskQueues?: SagaTaskQueues;
  tuning?: Partial<SagaTuning>;
  /**
   * When the order.placed event that started the saga happened (epoch ms), for the
   * event-to-saga-complete latency. Optional: sagas started before it existed, and from a client
   * rather than an event, have none.
   */
  eventOccurredAt?: number;
}

/**
 * Where a saga stands. PARKED: a compensation exhausted its retries and the saga waits, open, for an
 * operator's {@link ParkedDecision}; it then ends FAILED (retried compensations succeeded),
 * RESOLVED_MANUALLY (someone undid the steps by hand) or ABANDONED. COMPENSATION_FAILED is the end
 * state of runs recorded before parking existed (patch {@link PATCHES.parkOnCompensationFailure}).
 */
export type SagaState =
  | 'RUNNING'
  | 'COMPENSATING'
  | 'PARKED'
  | 'CONFIRMED'
  | 'FAILED'
  | 'RESOLVED_MANUALLY'
  | 'ABANDONED'
  | 'COMPENSATION_FAILED';

export interface SagaFailureInfo {
  /** A {@link FailureType} for known failures, else the SDK's failure name (e.g. 'TimeoutFailure'). */
  type: string;
  message: string;
  /** The step that failed. */
  step: SagaStep | CompensationStep;
}

/** What the `sagaStatus` query returns, and the details of a CompensationFailed failure. */
export interface SagaStatus {
  orderId: string;
  state: SagaState;
  currentStep: SagaStep | CompensationStep | null;
  completedSteps: SagaStep[];
  compensationsRun: CompensationStep[];
  /**
   * Compensations that exhausted their retry policy in the latest round: what a PARKED saga waits on
   * (and what an ABANDONED or COMPENSATION_FAILED one left undone).
   */
  failedCompensations: SagaFailureInfo[];
  /** Why the forward path stopped (business failure, infrastructure failure, or cancellation). */
  failure: SagaFailureInfo | null;
  cancelRequested: boolean;
  /** Set when a cancel arrived too late (payment already captured) and was ignored. */
  cancelIgnoredReason: string | null;
  /** A notice that could not be sent after the order was confirmed; the order stays confirmed. */
  notificationError: string | null;
  /** While PARKED: since when (epoch ms, workflow time) and which parking round (1, then 2 after a failed retry…). */
  parked?: { since: number; round: number } | null;
  /** Every operator decision the saga took, in order (absent in runs from before parking existed). */
  decisions?: RecordedDecision[];
}

/** What an operator decides for a parked saga. */
export const PARKED_DECISION_KINDS = ['RETRY', 'RESOLVE_MANUALLY', 'ABANDON'] as const;
export type ParkedDecisionKind = (typeof PARKED_DECISION_KINDS)[number];

/** The input of {@link decideParkedUpdate}. */
export interface ParkedDecision {
  decision: ParkedDecisionKind;
  /** Who decides: required for every decision, it goes into the audit event. */
  operator: string;
  /** Why: required for RESOLVE_MANUALLY and ABANDON (e.g. "refunded by hand in the gateway console"). */
  reason?: string | null;
}

export interface RecordedDecision extends ParkedDecision {
  reason: string | null;
  round: number;
  /** Workflow time the saga took the decision (epoch ms). */
  at: number;
  failedSteps: CompensationStep[];
}

/**
 * Why a decision is incomplete, or null when it is complete. Shared by the saga's update validator
 * and the operator CLI, so both refuse the same input with the same words.
 */
export function decisionProblem(d: unknown): string | null {
  if (typeof d !== 'object' || d === null) return 'a decision needs { decision, operator, reason }';
  const { decision, operator, reason } = d as Record<string, unknown>;
  if (typeof decision !== 'string' || !(PARKED_DECISION_KINDS as readonly string[]).includes(decision)) {
    return `decision must be one of ${PARKED_DECISION_KINDS.join(', ')} (got ${String(decision)})`;
  }
  if (typeof operator !== 'string' || operator.trim() === '') return 'an operator (who decides) is required';
  if (reason !== undefined && reason !== null && typeof reason !== 'string') return 'reason must be text';
  if (decision !== 'RETRY' && (typeof reason !== 'string' || reason.trim() === '')) {
    return `a reason is required to ${decision === 'ABANDON' ? 'abandon' : 'resolve'} a parked saga`;
  }
  return null;
}

export interface OrderSagaResult {
  orderId: string;
  outcome: 'CONFIRMED' | 'FAILED';
  status: SagaStatus;
}

export interface CancelOrderRequest {
  reason: string;
}

/** Asks the saga to stop; honoured only before payment is captured (see {@link SagaStatus}). */
export const cancelOrderSignal = defineSignal<[CancelOrderRequest]>('cancelOrder');

/** Current step, completed steps and compensations run. */
export const sagaStatusQuery = defineQuery<SagaStatus>('sagaStatus');

/**
 * An operator's decision for a PARKED saga, as a Temporal Update. Its validator refuses (type
 * {@link FailureType.SagaNotParked} or {@link FailureType.InvalidDecision}) before anything is
 * recorded; once accepted, the saga writes the decision as an order.parked-decision event and
 * answers with its status (COMPENSATING while a retry runs, or the end state).
 */
export const decideParkedUpdate = defineUpdate<SagaStatus, [ParkedDecision]>('decideParked');

/** patched() ids, kept here so a later deprecatePatch() uses the very same string. */
export const PATCHES = {
  /** v2: tell the customer the order was received as soon as it is created (before stock and payment). */
  orderReceivedNotice: 'order-received-notice',
  /** v3: a compensation that exhausts its retries parks the saga for an operator instead of failing it. */
  parkOnCompensationFailure: 'park-on-compensation-failure',
  /** v3: the saga keeps its search attributes (OrderState, FailedStep, …) current for the Web UI. */
  orderSearchAttributes: 'order-search-attributes',
} as const;

/** How a saga ended, as the metrics count it (COMPENSATION_FAILED only for runs from before parking). */
export type SagaOutcome = 'CONFIRMED' | 'FAILED' | 'RESOLVED_MANUALLY' | 'ABANDONED' | 'COMPENSATION_FAILED';

/**
 * The workflow's window onto the worker's Prometheus metrics. Workflow code cannot touch
 * prom-client (sandbox), so it calls these Temporal sinks; the worker process implements them.
 * Sinks add nothing to the history and are not called while replaying, so each saga counts once
 * however often it is replayed.
 */
export interface SagaMetricsSinks extends Sinks {
  sagaMetrics: {
    /** A compensation completed (the failure notice counts as step `notifyCustomer`). */
    compensated(step: CompensationStep): void;
    /** The saga reached its terminal state; `eventOccurredAt` from the input, when it has one. */
    ended(outcome: SagaOutcome, eventOccurredAt: number | undefined): void;
    /** A compensation exhausted its retries and the saga parked for an operator. */
    parked(failedSteps: CompensationStep[]): void;
  };
}

/** Decimal places of a currency's minor unit (ISO 4217); 2 unless listed. */
const MINOR_UNIT_DIGITS: Record<string, number> = { JPY: 0, KRW: 0, ISK: 0, CLP: 0, VND: 0, BHD: 3, KWD: 3, JOD: 3 };

/** An exact amount for people: 2740 EUR → "27.40 EUR" (integer arithmetic, no floating point). */
export function formatMoney(amountMinor: number, currency: string): string {
  const digits = MINOR_UNIT_DIGITS[currency] ?? 2;
  const sign = amountMinor < 0 ? '-' : '';
  const abs = Math.abs(amountMinor).toString();
  if (digits === 0) return `${sign}${abs} ${currency}`;
  const padded = abs.padStart(digits + 1, '0');
  return `${sign}${padded.slice(0, -digits)}.${padded.slice(-digits)} ${currency}`;
}

/** The order's total in minor units, as createOrder computes it. */
export function orderTotalMinor(order: OrderDetails): number {
  return order.items.reduce((sum, i) => sum + i.quantity * i.unitPriceMinor, 0);
}

/** "2 × SKU-KETTLE, 1 × SKU-MUG" */
export function describeItems(items: readonly { sku: string; quantity: number }[]): string {
  return items.map((i) => `${i.quantity} × ${i.sku}`).join(', ');
}

/**
 * The static summary and details the Web UI shows on a saga (set by whoever starts it): one line
 * with order, customer and total, and the lines in Markdown.
 */
export function sagaStartMetadata(order: OrderDetails): { staticSummary: string; staticDetails: string } {
  const total = formatMoney(orderTotalMinor(order), order.currency);
  const lines = order.items.map(
    (i) => `| ${i.sku} | ${i.quantity} | ${formatMoney(i.unitPriceMinor, order.currency)} |`,
  );
  return {
    staticSummary: `order ${order.orderId} · customer ${order.customerId} · ${total}`,
    staticDetails: [
      `**Order** ${order.orderId}  `,
      `**Customer** ${order.customerId}  `,
      `**Total** ${total}`,
      '',
      '| SKU | Quantity | Unit price |',
      '| --- | ---: | ---: |',
      ...lines,
    ].join('\n'),
  };
}
