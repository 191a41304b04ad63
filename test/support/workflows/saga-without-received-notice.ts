import type { OrderSagaInput, OrderSagaResult } from '../../../src/shared/saga-contract';
import { runOrderSaga } from '../../../workflows/order-saga';

/**
 * A deploy gone wrong: the "order received" notice removed outright instead of behind patched().
 * Runs started with the notice cannot replay on this code (their histories schedule it before
 * reserveStock), which is what the deploy check must catch and what versioning must shield them from.
 */
export async function orderSaga(input: OrderSagaInput): Promise<OrderSagaResult> {
  return runOrderSaga(input, { sendReceivedNotice: () => false });
}
