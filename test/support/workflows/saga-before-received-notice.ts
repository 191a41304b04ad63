import type { OrderSagaInput, OrderSagaResult } from '../../../src/shared/saga-contract';
import { runOrderSaga } from '../../../workflows/order-saga';

/**
 * The saga as it was before v2 added the "order received" notice: the old build of the rolling-deploy
 * drill. The current code (the new build) adds the notice behind patched(), so runs this build
 * started must replay on it, and the ones it had not started yet take the new path.
 */
export async function orderSaga(input: OrderSagaInput): Promise<OrderSagaResult> {
  return runOrderSaga(input, { sendReceivedNotice: () => false });
}
