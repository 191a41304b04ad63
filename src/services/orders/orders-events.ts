/**
 * The events of the orders service, one factory each (see src/events/event-factory.ts). The saga's
 * steps write order.confirmed, order.failed and order.parked-decision with ids derived from their
 * step; the HTTP API writes order.placed and order.cancelled, which start or stop a saga, with fresh
 * ids (external producers send the same events straight to Kafka).
 */
import { freshEvent, stepEvent } from '../../events/event-factory';
import {
  orderCancelledV1Schema,
  orderConfirmedV1Schema,
  orderConfirmedV2Schema,
  orderFailedV1Schema,
  orderParkedDecisionV1Schema,
  orderPlacedV1Schema,
  orderPlacedV2Schema,
} from '../../events/generated/event-schemas';
import { TOPICS } from '../../events/topics';

/** An order was placed: the event that starts its saga (latest version). */
export const orderPlaced = freshEvent(orderPlacedV2Schema, { service: 'orders', topic: TOPICS.orderPlaced });

/**
 * order.placed as version 1 producers write it (no loyalty flag); the ingress upcasts it. Kept so
 * the producer CLI and tests can send what older producers still send.
 */
export const orderPlacedV1 = freshEvent(orderPlacedV1Schema, { service: 'orders', topic: TOPICS.orderPlaced });

/** The customer asked to cancel an order; the saga decides whether it still can. */
export const orderCancelled = freshEvent(orderCancelledV1Schema, { service: 'orders', topic: TOPICS.orderCancelled });

/** An order was confirmed (confirmOrder, the saga's pivot); v2 carries the customer's loyalty membership. */
export const orderConfirmed = stepEvent(orderConfirmedV2Schema, { service: 'orders', topic: TOPICS.orderConfirmed });

/**
 * order.confirmed as version 1 writers wrote it (no loyalty flag); its consumers upcast it (not a
 * member). Kept so tests can send what a not yet upgraded orders service still publishes.
 */
export const orderConfirmedV1 = stepEvent(orderConfirmedV1Schema, { service: 'orders', topic: TOPICS.orderConfirmed });

/** An order failed (failOrder, the compensation of createOrder), with the failure's type and reason. */
export const orderFailed = stepEvent(orderFailedV1Schema, { service: 'orders', topic: TOPICS.orderFailed });

/** An operator's decision on a parked saga (recordParkedDecision): the audit trail. */
export const orderParkedDecision = stepEvent(orderParkedDecisionV1Schema, {
  service: 'orders',
  topic: TOPICS.orderParkedDecision,
});
