/**
 * The order saga's contract, shared by workflows, workers and clients.
 *
 * This module is loaded inside Temporal's workflow sandbox, so it may import only
 * `@temporalio/workflow` definitions and plain TypeScript: no Node builtins, no I/O.
 */
import type { Sinks } from '@temporalio/workflow';
import { defineQuery, defineSignal } from '@temporalio/workflow';

/** The services that own data and run activities, one task queue and one PostgreSQL schema each. */
export const SERVICES = ['orders', 'inventory', 'payments', 'notifications'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Task queue of the orchestrator (workflow code only) and of each service's activity worker. */
export interface SagaTaskQueues {
  saga: string;
  orders: string;
  inventory: string;
  payments: string;
  notifications: string;
}

/**
 * Task queue names under an optional prefix. Production uses no prefix; tests and benchmarks pass a
 * unique one so their workers never pick up each other's tasks.
 */
export function taskQueuesFor(prefix = ''): SagaTaskQueues {
  const p = prefix ? `${prefix}.` : '';
  return {
    saga: `${p}order-saga`,
    orders: `${p}orders`,
    inventory: `${p}inventory`,
    payments: `${p}payments`,
    notifications: `${p}notifications`,
  };
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
  | 'notifyFailed';

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
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** Failures that retrying cannot fix; activities raise them non-retryable and policies list them too. */
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
  /** Compensations and notices: retried far longer; exhausting this ends in COMPENSATION_FAILED. */
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

export type SagaState = 'RUNNING' | 'COMPENSATING' | 'CONFIRMED' | 'FAILED' | 'COMPENSATION_FAILED';

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
  /** Compensations that exhausted their retry policy; non-empty only in COMPENSATION_FAILED. */
  failedCompensations: SagaFailureInfo[];
  /** Why the forward path stopped (business failure, infrastructure failure, or cancellation). */
  failure: SagaFailureInfo | null;
  cancelRequested: boolean;
  /** Set when a cancel arrived too late (payment already captured) and was ignored. */
  cancelIgnoredReason: string | null;
  /** A notice that could not be sent after the order was confirmed; the order stays confirmed. */
  notificationError: string | null;
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

/** patched() ids, kept here so a later deprecatePatch() uses the very same string. */
export const PATCHES = {
  /** v2: tell the customer the order was received as soon as it is created (before stock and payment). */
  orderReceivedNotice: 'order-received-notice',
} as const;

/** How a saga ended, as the metrics count it: the workflow's result, or COMPENSATION_FAILED. */
export type SagaOutcome = 'CONFIRMED' | 'FAILED' | 'COMPENSATION_FAILED';

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
  };
}
