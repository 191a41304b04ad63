import type { OrderSagaInput, OrderSagaResult } from '../../../src/shared/saga-contract';
import { runOrderSaga } from '../../../workflows/order-saga';

/**
 * The v2 change made the wrong way: the "order received" notice sent unconditionally, without
 * patched(). Replaying a v1 history with this must fail; the replay test proves it does.
 */
export async function orderSaga(input: OrderSagaInput): Promise<OrderSagaResult> {
  return runOrderSaga(input, { sendReceivedNotice: () => true });
}
