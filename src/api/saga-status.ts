/**
 * The saga's view of an order for GET /orders/:id, from Temporal: the workflow's status, and its
 * sagaStatus (by query while it runs, from its result once it completed).
 */
import type { Client } from '@temporalio/client';

import type { OrderSagaResult, SagaStatus } from '../shared/saga-contract';
import { orderWorkflowId, sagaStatusQuery } from '../shared/saga-contract';
import type { OrderView } from './order-requests';

export type SagaView = NonNullable<OrderView['saga']>;

export interface SagaStatusReader {
  /** null when no saga exists (yet) for the order. */
  read(orderId: string): Promise<SagaView | null>;
}

function view(workflowId: string, workflowStatus: string, s: SagaStatus | null): SagaView {
  return {
    workflowId,
    workflowStatus,
    state: s?.state ?? null,
    currentStep: s?.currentStep ?? null,
    completedSteps: s?.completedSteps ?? [],
    compensationsRun: s?.compensationsRun ?? [],
  };
}

export class TemporalSagaStatusReader implements SagaStatusReader {
  constructor(
    private readonly client: Client,
    private readonly queryTimeoutMs = 3_000,
  ) {}

  async read(orderId: string): Promise<SagaView | null> {
    const workflowId = orderWorkflowId(orderId);
    const handle = this.client.workflow.getHandle(workflowId);
    let status: string;
    try {
      status = (await handle.describe()).status.name;
    } catch (err) {
      if ((err as Error).name === 'WorkflowNotFoundError') return null;
      throw err;
    }
    let saga: SagaStatus | null = null;
    try {
      if (status === 'COMPLETED') saga = ((await handle.result()) as OrderSagaResult).status;
      else if (status === 'RUNNING') {
        // A query needs a live worker; without one the order is still shown, just without steps.
        saga = await Promise.race([
          handle.query(sagaStatusQuery),
          new Promise<null>((r) => setTimeout(() => r(null), this.queryTimeoutMs).unref()),
        ]);
      }
    } catch {
      saga = null;
    }
    return view(workflowId, status, saga);
  }
}
