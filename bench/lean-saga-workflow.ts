/**
 * The lean reference saga: the same shape as orderSaga (createOrder, notify received, reserveStock,
 * chargePayment, confirmOrder, notify confirmed; compensations last-in first-out on failure), written
 * the plain way: no tracing interceptors, no metrics sinks, no logging, no patch markers, no search
 * attributes, no status query. bench/saga-overhead.ts states our saga's throughput as a ratio to it.
 */
import { CancellationScope, proxyActivities, workflowInfo } from '@temporalio/workflow';

import type { SagaTaskQueues } from '../src/shared/saga-contract';
import type { LeanOrder, LeanSagaActivities } from './lean-saga-activities';

const on = (taskQueue: string) =>
  proxyActivities<LeanSagaActivities>({
    taskQueue,
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '200 milliseconds', maximumAttempts: 5 },
  });

/** One order through the lean saga; returns 'CONFIRMED' or 'FAILED'. */
export async function leanSaga(queues: SagaTaskQueues, order: LeanOrder): Promise<string> {
  const { workflowId } = workflowInfo();
  const key = (step: string) => `${workflowId}/${step}`;
  const orders = on(queues.orders);
  const inventory = on(queues.inventory);
  const payments = on(queues.payments);
  const notifications = on(queues.notifications);
  const undo: (() => Promise<unknown>)[] = [];
  try {
    undo.push(() => orders.leanFailOrder(key('failOrder'), order));
    await orders.leanCreateOrder(key('createOrder'), order);
    await notifications.leanNotify(key('notifyReceived'), order, 'ORDER_RECEIVED');
    undo.push(() => inventory.leanReleaseStock(key('releaseStock'), key('reserveStock'), order));
    await inventory.leanReserveStock(key('reserveStock'), order);
    undo.push(() => payments.leanRefundPayment(key('refundPayment'), key('chargePayment'), order));
    await payments.leanChargePayment(key('chargePayment'), order);
    await orders.leanConfirmOrder(key('confirmOrder'), order);
  } catch {
    await CancellationScope.nonCancellable(async () => {
      for (const u of undo.reverse()) await u();
      await notifications.leanNotify(key('notifyFailed'), order, 'ORDER_FAILED');
    });
    return 'FAILED';
  }
  await notifications.leanNotify(key('notifyConfirmed'), order, 'ORDER_CONFIRMED');
  return 'CONFIRMED';
}
