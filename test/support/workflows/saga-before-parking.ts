import type { OrderSagaInput, OrderSagaResult } from '../../../src/shared/saga-contract';
import { runOrderSaga } from '../../../workflows/order-saga';

/**
 * The saga as runs recorded before parking take it (patched() false for both v3 patches): an
 * exhausted compensation fails the workflow with CompensationFailed. Such runs may still be open
 * when v3 deploys, so their path keeps its own test.
 */
export async function orderSaga(input: OrderSagaInput): Promise<OrderSagaResult> {
  return runOrderSaga(input, { parkOnCompensationFailure: () => false, publishSearchAttributes: () => false });
}
