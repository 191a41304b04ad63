import type { OrderSagaInput, OrderSagaResult } from '../../../src/shared/saga-contract';
import { runOrderSaga } from '../../../workflows/order-saga';

/**
 * The v3 parking made the wrong way: an exhausted compensation parks the saga without asking
 * patched(). Runs that ended in CompensationFailed before v3 must then fail to replay.
 */
export async function orderSaga(input: OrderSagaInput): Promise<OrderSagaResult> {
  return runOrderSaga(input, { parkOnCompensationFailure: () => true });
}
