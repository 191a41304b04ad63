import { condition, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';

import type { OrderSagaInput } from '../../../src/shared/saga-contract';
import { cancelOrderSignal } from '../../../src/shared/saga-contract';
import type { StubSagaActivities } from '../stub-saga-activities';

const { recordStubSaga } = proxyActivities<StubSagaActivities>({ startToCloseTimeout: '30 seconds' });

/** How long the stub stays open for a cancel signal before "charging". */
const CANCEL_WINDOW = '1 second';

/**
 * Stands in for the real saga in ingress tests: registered under the same type name, it waits briefly
 * for a cancel, then writes one row per run, which is what lets tests count sagas and charges in
 * PostgreSQL.
 */
export async function orderSaga(input: OrderSagaInput): Promise<{ orderId: string; outcome: string }> {
  let cancelled = false;
  setHandler(cancelOrderSignal, () => {
    cancelled = true;
  });
  await condition(() => cancelled, CANCEL_WINDOW);
  const info = workflowInfo();
  const outcome = cancelled ? 'CANCELLED' : 'CHARGED';
  await recordStubSaga({
    orderId: input.order.orderId,
    workflowId: info.workflowId,
    runId: info.runId,
    taskQueue: info.taskQueue,
    outcome,
    totalMinor: input.order.items.reduce((sum, l) => sum + l.quantity * l.unitPriceMinor, 0),
  });
  return { orderId: input.order.orderId, outcome };
}
