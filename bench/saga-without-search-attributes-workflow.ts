/**
 * orderSaga exactly as deployed except that it never upserts search attributes (as runs recorded
 * before v3 do), so bench/saga-overhead.ts can price the visibility writes on their own. Registered
 * under the production type name, so the benchmark starts it like any order saga.
 */
import type { OrderSagaInput, OrderSagaResult } from '../src/shared/saga-contract';
import { runOrderSaga } from '../workflows/order-saga';

export async function orderSaga(input: OrderSagaInput): Promise<OrderSagaResult> {
  return runOrderSaga(input, { publishSearchAttributes: () => false });
}
