/**
 * What an operator does with parked sagas (`orders parked …`) and how monitoring counts them: all
 * through Temporal (visibility for lists and counts, the sagaStatus query, the decideParked update).
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';

import type { ParkedDecision, SagaStatus } from '../shared/saga-contract';
import {
  decideParkedUpdate,
  decisionProblem,
  FailureType,
  ORDER_SAGA_WORKFLOW_TYPE,
  orderIdFromWorkflowId,
  orderWorkflowId,
  sagaStatusQuery,
} from '../shared/saga-contract';
import {
  currencyKey,
  customerIdKey,
  failedStepKey,
  orderStateKey,
  orderTotalMinorKey,
  PARKED_SAGAS_QUERY,
  parkedSinceKey,
} from '../shared/search-attributes';

/** Failure type strings of the operator commands (the CLI prints the message and exits 1). */
export const ParkedCommandError = {
  UnknownOrder: 'UnknownOrder',
  NotParked: FailureType.SagaNotParked,
  InvalidDecision: FailureType.InvalidDecision,
} as const;

export class ParkedSagaError extends Error {
  override name = 'ParkedSagaError';
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ParkedSagaRow {
  orderId: string;
  workflowId: string;
  state: string | undefined;
  failedStep: string | undefined;
  customerId: string | undefined;
  totalMinor: number | undefined;
  currency: string | undefined;
  parkedSince: Date | undefined;
}

function row(info: Pick<WorkflowExecutionInfo, 'workflowId' | 'typedSearchAttributes'>): ParkedSagaRow {
  const sa = info.typedSearchAttributes;
  return {
    orderId: orderIdFromWorkflowId(info.workflowId) ?? info.workflowId,
    workflowId: info.workflowId,
    state: sa.get(orderStateKey),
    failedStep: sa.get(failedStepKey),
    customerId: sa.get(customerIdKey),
    totalMinor: sa.get(orderTotalMinorKey),
    currency: sa.get(currencyKey),
    parkedSince: sa.get(parkedSinceKey),
  };
}

/** Visibility query of the open parked sagas, narrowed to one saga task queue (tests, scoped runs) if given. */
export function parkedQuery(opts: { taskQueue?: string; parkedBefore?: Date } = {}): string {
  let q = `WorkflowType = '${ORDER_SAGA_WORKFLOW_TYPE}' AND ${PARKED_SAGAS_QUERY}`;
  if (opts.taskQueue) q += ` AND TaskQueue = '${opts.taskQueue}'`;
  if (opts.parkedBefore) q += ` AND ${parkedSinceKey.name} < '${opts.parkedBefore.toISOString()}'`;
  return q;
}

/** Every open parked saga, oldest parking first. */
export async function listParkedSagas(client: Client, opts: { taskQueue?: string } = {}): Promise<ParkedSagaRow[]> {
  const rows: ParkedSagaRow[] = [];
  for await (const info of client.workflow.list({ query: parkedQuery(opts) })) rows.push(row(info));
  return rows.sort((a, b) => (a.parkedSince?.getTime() ?? 0) - (b.parkedSince?.getTime() ?? 0));
}

/** How many sagas are parked, and how many of them longer than `overdueAfterMs` (for the alert). */
export async function countParkedSagas(
  client: Client,
  opts: { taskQueue?: string; overdueAfterMs: number; now?: number },
): Promise<{ parked: number; overdue: number }> {
  const parkedBefore = new Date((opts.now ?? Date.now()) - opts.overdueAfterMs);
  const [parked, overdue] = await Promise.all([
    client.workflow.count(parkedQuery({ taskQueue: opts.taskQueue })),
    client.workflow.count(parkedQuery({ taskQueue: opts.taskQueue, parkedBefore })),
  ]);
  return { parked: parked.count, overdue: overdue.count };
}

export interface SagaView extends ParkedSagaRow {
  executionStatus: string;
  summary: string | undefined;
  details: string | undefined;
  /** The saga's own status (sagaStatus query); null when the workflow can no longer answer it. */
  status: SagaStatus | null;
}

/** One order's saga: execution status, search attributes, summary, details and saga status. */
export async function showSaga(client: Client, orderId: string): Promise<SagaView> {
  const handle = client.workflow.getHandle(orderWorkflowId(orderId));
  let described;
  try {
    described = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new ParkedSagaError(
        ParkedCommandError.UnknownOrder,
        `no saga for order ${orderId} (workflow ${handle.workflowId})`,
      );
    }
    throw err;
  }
  let status: SagaStatus | null = null;
  try {
    status = await handle.query(sagaStatusQuery);
  } catch {
    // A closed run's query needs a worker; without one, the search attributes still tell the story.
  }
  return {
    ...row(described),
    executionStatus: described.status.name,
    summary: await described.staticSummary(),
    details: await described.staticDetails(),
    status,
  };
}

/**
 * Sends an operator decision to a parked saga and returns its status once the decision is recorded.
 * Refuses, with a ParkedSagaError of a clear type, an incomplete decision (before asking Temporal),
 * an unknown order, and a saga that is not parked (closed, or running without a failed compensation).
 */
export async function decideParked(client: Client, orderId: string, decision: ParkedDecision): Promise<SagaStatus> {
  const problem = decisionProblem(decision);
  if (problem) throw new ParkedSagaError(ParkedCommandError.InvalidDecision, problem);
  const view = await showSaga(client, orderId);
  if (view.executionStatus !== 'RUNNING') {
    throw new ParkedSagaError(
      ParkedCommandError.NotParked,
      `order ${orderId} is not parked: its saga is ${view.executionStatus} (state ${view.state ?? view.status?.state ?? 'unknown'})`,
    );
  }
  try {
    return await client.workflow
      .getHandle(orderWorkflowId(orderId))
      .executeUpdate(decideParkedUpdate, { args: [decision] });
  } catch (err) {
    const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type) throw new ParkedSagaError(cause.type, cause.message);
    throw err;
  }
}
