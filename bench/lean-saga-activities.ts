/**
 * The lean reference saga's activities (see lean-saga-workflow.ts): what a hand-written Temporal
 * service would do per step, in each service's own schema: one transaction holding the idempotency
 * record, the effect and an outbox row. No tracing, no activity log line, no Avro (the outbox
 * payload is JSON), no card gateway; the saga's own activities are the comparison. Its statements
 * are prepared like ours (src/db/prepared.ts), so the comparison is about the saga, not the driver.
 */
import { randomUUID } from 'node:crypto';

import type pg from 'pg';

import { prepared } from '../src/db/prepared';

/** The four services' pools, each logged in as that service's role. */
export interface LeanPools {
  orders: pg.Pool;
  inventory: pg.Pool;
  payments: pg.Pool;
  notifications: pg.Pool;
}

export interface LeanOrder {
  orderId: string;
  customerId: string;
  currency: string;
  sku: string;
  quantity: number;
  unitPriceMinor: number;
}

/**
 * Runs `effect` once per key: the key row is claimed first (a duplicate finds it taken and does
 * nothing), then the effect and its outbox row, all in one transaction.
 */
async function once(
  pool: pg.Pool,
  schema: string,
  key: string,
  event: { type: string; topic: string; orderId: string; body: Record<string, unknown> },
  effect: (tx: pg.PoolClient) => Promise<unknown>,
): Promise<boolean> {
  const tx = await pool.connect();
  try {
    await tx.query('BEGIN');
    const claimed = await tx.query(
      prepared(
        `INSERT INTO ${schema}.idempotency_keys (key, operation, outcome) VALUES ($1, $2, '{"status":"done"}')
       ON CONFLICT (key) DO NOTHING`,
        [key, event.type],
      ),
    );
    if (claimed.rowCount === 0) {
      await tx.query('COMMIT');
      return false;
    }
    await effect(tx);
    await tx.query(
      prepared(
        `INSERT INTO ${schema}.outbox (id, aggregatetype, aggregateid, type, topic, payload)
       VALUES ($1, 'order', $2, $3, $4, $5)`,
        [randomUUID(), event.orderId, event.type, event.topic, Buffer.from(JSON.stringify(event.body))],
      ),
    );
    await tx.query('COMMIT');
    return true;
  } catch (err) {
    await tx.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    tx.release();
  }
}

/** The six happy-path steps (and the three compensations) of the lean saga; `topicPrefix` keeps rows off real topics. */
export function createLeanSagaActivities(db: LeanPools, topicPrefix: string) {
  const topic = (name: string) => `${topicPrefix}.${name}`;
  return {
    leanCreateOrder: (key: string, o: LeanOrder) =>
      once(
        db.orders,
        'orders',
        key,
        { type: 'order.created', topic: topic('order.created'), orderId: o.orderId, body: { ...o } },
        async (tx) => {
          await tx.query(
            prepared(
              `INSERT INTO orders.orders (order_id, customer_id, currency, total_minor, status) VALUES ($1, $2, $3, $4, 'PENDING')`,
              [o.orderId, o.customerId, o.currency, o.quantity * o.unitPriceMinor],
            ),
          );
          await tx.query(
            prepared(
              `INSERT INTO orders.order_lines (order_id, line_no, sku, quantity, unit_price_minor) VALUES ($1, 1, $2, $3, $4)`,
              [o.orderId, o.sku, o.quantity, o.unitPriceMinor],
            ),
          );
        },
      ),
    leanNotify: (key: string, o: LeanOrder, kind: string) =>
      once(
        db.notifications,
        'notifications',
        key,
        { type: 'notification.sent', topic: topic('notification.sent'), orderId: o.orderId, body: { kind } },
        (tx) =>
          tx.query(
            prepared(
              `INSERT INTO notifications.notifications (idempotency_key, order_id, customer_id, kind, message, channel)
           VALUES ($1, $2, $3, $4, $5, 'log')`,
              [key, o.orderId, o.customerId, kind, `order ${o.orderId}: ${kind}`],
            ),
          ),
      ),
    leanReserveStock: (key: string, o: LeanOrder) =>
      once(
        db.inventory,
        'inventory',
        key,
        { type: 'stock.reserved', topic: topic('stock.reserved'), orderId: o.orderId, body: { sku: o.sku } },
        async (tx) => {
          const taken = await tx.query(
            prepared(
              'UPDATE inventory.stock SET available = available - $2, updated_at = now() WHERE sku = $1 AND available >= $2',
              [o.sku, o.quantity],
            ),
          );
          if (taken.rowCount === 0) throw new Error(`out of stock: ${o.sku}`);
          await tx.query(
            prepared(
              `INSERT INTO inventory.reservations (reservation_key, order_id, status) VALUES ($1, $2, 'RESERVED')`,
              [key, o.orderId],
            ),
          );
          await tx.query(
            prepared('INSERT INTO inventory.reservation_lines (reservation_key, sku, quantity) VALUES ($1, $2, $3)', [
              key,
              o.sku,
              o.quantity,
            ]),
          );
        },
      ),
    leanChargePayment: (key: string, o: LeanOrder) =>
      once(
        db.payments,
        'payments',
        key,
        {
          type: 'payment.captured',
          topic: topic('payment.captured'),
          orderId: o.orderId,
          body: { amount: o.quantity * o.unitPriceMinor },
        },
        (tx) =>
          tx.query(
            prepared(
              `INSERT INTO payments.payments (charge_key, order_id, amount_minor, currency, status, gateway_charge_id)
           VALUES ($1, $2, $3, $4, 'CAPTURED', $5)`,
              [key, o.orderId, o.quantity * o.unitPriceMinor, o.currency, `ch_${key}`],
            ),
          ),
      ),
    leanConfirmOrder: (key: string, o: LeanOrder) =>
      once(
        db.orders,
        'orders',
        key,
        { type: 'order.confirmed', topic: topic('order.confirmed'), orderId: o.orderId, body: {} },
        (tx) =>
          tx.query(
            prepared(`UPDATE orders.orders SET status = 'CONFIRMED', updated_at = now() WHERE order_id = $1`, [
              o.orderId,
            ]),
          ),
      ),
    leanFailOrder: (key: string, o: LeanOrder) =>
      once(
        db.orders,
        'orders',
        key,
        { type: 'order.failed', topic: topic('order.failed'), orderId: o.orderId, body: {} },
        (tx) =>
          tx.query(
            prepared(
              `UPDATE orders.orders SET status = 'FAILED', failure_reason = 'saga failed', updated_at = now() WHERE order_id = $1`,
              [o.orderId],
            ),
          ),
      ),
    leanReleaseStock: (key: string, reservationKey: string, o: LeanOrder) =>
      once(
        db.inventory,
        'inventory',
        key,
        { type: 'stock.released', topic: topic('stock.released'), orderId: o.orderId, body: {} },
        async (tx) => {
          const released = await tx.query(
            prepared(
              `UPDATE inventory.reservations SET status = 'RELEASED', released_at = now() WHERE reservation_key = $1 AND status = 'RESERVED'`,
              [reservationKey],
            ),
          );
          if (released.rowCount === 1) {
            await tx.query(
              prepared('UPDATE inventory.stock SET available = available + $2 WHERE sku = $1', [o.sku, o.quantity]),
            );
          }
        },
      ),
    leanRefundPayment: (key: string, chargeKey: string, o: LeanOrder) =>
      once(
        db.payments,
        'payments',
        key,
        { type: 'payment.refunded', topic: topic('payment.refunded'), orderId: o.orderId, body: {} },
        (tx) =>
          tx.query(
            prepared(
              `UPDATE payments.payments SET status = 'REFUNDED', refund_key = $2 WHERE charge_key = $1 AND status = 'CAPTURED'`,
              [chargeKey, key],
            ),
          ),
      ),
  };
}

export type LeanSagaActivities = ReturnType<typeof createLeanSagaActivities>;
