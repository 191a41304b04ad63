import { proxyActivities } from '@temporalio/workflow';

import type { SagaTaskQueues } from '../src/shared/saga-contract';

interface NoopActivities {
  noop(step: string): Promise<string>;
}

/**
 * The engine's floor for the saga: the same activity count on the same task queues, in the same
 * order, each doing nothing. The difference to orderSaga is our code (SQL, gateway, workflow logic).
 */
export async function bareSaga(queues: SagaTaskQueues): Promise<number> {
  const on = (taskQueue: string) =>
    proxyActivities<NoopActivities>({ taskQueue, startToCloseTimeout: '30 seconds' }).noop;
  // orderSaga's happy path: createOrder, notifyReceived, reserveStock, chargePayment, confirmOrder, notifyConfirmed.
  const route = [
    queues.orders,
    queues.notifications,
    queues.inventory,
    queues.payments,
    queues.orders,
    queues.notifications,
  ];
  for (const [i, q] of route.entries()) await on(q)(`step-${i}`);
  return route.length;
}
