/**
 * Custom search attributes of the order saga, so the Temporal Web UI and `orders parked list` can find sagas by
 * state, failed step, customer or total. Provisioning registers them in the namespace; the saga keeps them current.
 *
 * Loaded inside the workflow sandbox: `@temporalio/common` definitions only, no I/O.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Where the order stands: a SagaState (RUNNING, COMPENSATING, PARKED, CONFIRMED, FAILED, RESOLVED_MANUALLY, ABANDONED). */
export const orderStateKey = defineSearchAttributeKey('OrderState', SearchAttributeType.KEYWORD);
/** The step whose failure started the compensations (or whose compensation parked the saga). */
export const failedStepKey = defineSearchAttributeKey('FailedStep', SearchAttributeType.KEYWORD);
export const customerIdKey = defineSearchAttributeKey('CustomerId', SearchAttributeType.KEYWORD);
/** The order total in the currency's minor units (exact, never floating point). */
export const orderTotalMinorKey = defineSearchAttributeKey('OrderTotalMinor', SearchAttributeType.INT);
export const currencyKey = defineSearchAttributeKey('Currency', SearchAttributeType.KEYWORD);
/** When the saga parked (unset otherwise), so monitoring can find the ones waiting too long for a decision. */
export const parkedSinceKey = defineSearchAttributeKey('ParkedSince', SearchAttributeType.DATETIME);

/** Every custom search attribute the saga writes: what provisioning registers. */
export const ORDER_SEARCH_ATTRIBUTES = [
  orderStateKey,
  failedStepKey,
  customerIdKey,
  orderTotalMinorKey,
  currencyKey,
  parkedSinceKey,
];

/** Visibility query of the sagas waiting for an operator decision (also a Web UI filter). */
export const PARKED_SAGAS_QUERY = `${orderStateKey.name} = "PARKED" AND ExecutionStatus = "Running"`;
