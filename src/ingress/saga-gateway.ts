/**
 * The ingress's only contact with Temporal: start `orderSaga` by type name (no workflow code is
 * imported) and deliver the cancel signal. Known outcomes come back as values; anything else is
 * thrown, and the consumer treats it as transient (back off, pause the partition, never skip).
 */
import type { Client, Connection } from '@temporalio/client';

import type { OrderPlaced } from '../events/rules';
import type { OrderDetails, OrderSagaInput, SagaTaskQueues } from '../shared/saga-contract';
import {
  cancelOrderSignal,
  ORDER_SAGA_WORKFLOW_TYPE,
  orderWorkflowId,
  sagaStartMetadata,
} from '../shared/saga-contract';

/** Memo fields the ingress puts on every saga it starts, for tracing a saga back to its event. */
export interface SagaStartMemo {
  eventId: string;
  /** Version the event was written in, before upcasting. */
  sourceVersion: number;
  isLoyaltyMember: boolean;
}

export interface SagaGateway {
  /** Starts the order's saga; `ALREADY_STARTED` when one with the order's workflow id ever ran. */
  start(
    order: OrderPlaced,
    sourceVersion: number,
  ): Promise<{ workflowId: string; outcome: 'STARTED' | 'ALREADY_STARTED' }>;
  /** Signals cancel; `NOT_RUNNING` when no open saga has the order's workflow id. */
  cancel(orderId: string, reason: string): Promise<'SIGNALLED' | 'NOT_RUNNING'>;
}

/** The saga's input for an order event. userId is the customer; the token pays. */
export function sagaInputFor(e: OrderPlaced, taskQueues: SagaTaskQueues): OrderSagaInput {
  const order: OrderDetails = {
    orderId: e.orderId,
    customerId: e.userId,
    currency: e.currency,
    items: e.items.map((i) => ({ sku: i.sku, quantity: i.quantity, unitPriceMinor: i.unitPriceMinor })),
    paymentToken: e.paymentToken,
    isLoyaltyMember: e.isLoyaltyMember,
  };
  // occurredAt travels with the saga so its end can be measured against the event, not the start.
  return { order, taskQueues, eventOccurredAt: e.occurredAt };
}

export class TemporalSagaGateway implements SagaGateway {
  constructor(
    private readonly client: Client,
    private readonly connection: Connection,
    private readonly taskQueues: SagaTaskQueues,
    private readonly timeoutMs: number,
  ) {}

  async start(e: OrderPlaced, sourceVersion: number) {
    const workflowId = orderWorkflowId(e.orderId);
    const memo: SagaStartMemo = { eventId: e.eventId, sourceVersion, isLoyaltyMember: e.isLoyaltyMember };
    const input = sagaInputFor(e, this.taskQueues);
    try {
      await this.connection.withDeadline(Date.now() + this.timeoutMs, () =>
        this.client.workflow.start(ORDER_SAGA_WORKFLOW_TYPE, {
          workflowId,
          taskQueue: this.taskQueues.saga,
          args: [input],
          // What the Web UI shows on the saga: order, customer, total, and its lines.
          ...sagaStartMetadata(input.order),
          // One saga per order, ever: not while it runs (FAIL) and not after it closed
          // (REJECT_DUPLICATE), for as long as Temporal keeps the history; the ledger covers the rest.
          workflowIdConflictPolicy: 'FAIL',
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          memo: { ...memo },
        }),
      );
      return { workflowId, outcome: 'STARTED' as const };
    } catch (err) {
      // A start that timed out may still have happened; the retry lands here, which is the point.
      if ((err as Error).name === 'WorkflowExecutionAlreadyStartedError') {
        return { workflowId, outcome: 'ALREADY_STARTED' as const };
      }
      throw err;
    }
  }

  async cancel(orderId: string, reason: string) {
    try {
      await this.connection.withDeadline(Date.now() + this.timeoutMs, () =>
        this.client.workflow.getHandle(orderWorkflowId(orderId)).signal(cancelOrderSignal, { reason }),
      );
      return 'SIGNALLED' as const;
    } catch (err) {
      // Temporal answers NotFound both for "never started" and "already closed".
      if ((err as Error).name === 'WorkflowNotFoundError') return 'NOT_RUNNING' as const;
      throw err;
    }
  }
}
