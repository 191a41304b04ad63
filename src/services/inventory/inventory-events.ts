/**
 * The events the inventory service emits, one factory each (see src/events/event-factory.ts):
 * `await outbox.emit(tx, stockReserved({ idempotencyKey, orderId, lines }))`.
 */
import { stepEvent } from '../../events/event-factory';
import { inventoryStockReleasedV1Schema, inventoryStockReservedV1Schema } from '../../events/generated/event-schemas';
import { TOPICS } from '../../events/topics';

/** Stock for every line of an order was reserved (reserveStock). */
export const stockReserved = stepEvent(inventoryStockReservedV1Schema, {
  service: 'inventory',
  topic: TOPICS.stockReserved,
});

/** A reservation's stock went back on the shelf (releaseStock, the compensation of reserveStock). */
export const stockReleased = stepEvent(inventoryStockReleasedV1Schema, {
  service: 'inventory',
  topic: TOPICS.stockReleased,
});
