/**
 * The orders service's side of the HTTP API: each write is one PostgreSQL transaction holding the
 * state change, its outbox event and the Idempotency-Key record, so a crash at any point leaves
 * either all three or none.
 */
import { randomUUID } from 'node:crypto';

import type pg from 'pg';

import { toSafeInteger } from '../db/pools';
import type { OutboxWriter } from '../outbox/outbox-writer';
import { orderCancelled, orderPlaced } from '../services/orders/orders-events';
import type { CancelAccepted, CancelOrderRequest, OrderCreated, PlaceOrderRequest } from './order-requests';
import { requestHash } from './order-requests';

/** Outcome of a write: the answer to send, and whether it repeats an earlier request's answer. */
export type WriteOutcome<T> =
  | { kind: 'done'; status: number; body: T; replayed: boolean }
  | { kind: 'keyReused' }
  | { kind: 'notFound' }
  | { kind: 'notCancellable'; status: string };

interface StoredAnswer {
  request_hash: string;
  response_status: number;
  response_body: unknown;
}

export class OrdersStore {
  constructor(
    private readonly db: pg.Pool,
    private readonly outbox: OutboxWriter,
  ) {}

  /**
   * Runs `work` in a transaction guarded by an optional Idempotency-Key: a key seen before with the
   * same request returns the stored answer without running `work`; with another request, keyReused.
   * Concurrent requests with one key serialise on an advisory lock, so only one does the work.
   */
  private async idempotent<T>(
    operation: string,
    key: string | undefined,
    request: unknown,
    work: (tx: pg.PoolClient) => Promise<WriteOutcome<T> & { orderId?: string }>,
  ): Promise<WriteOutcome<T>> {
    const hash = requestHash(operation, request);
    const tx = await this.db.connect();
    try {
      await tx.query('BEGIN');
      if (key !== undefined) {
        await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`api:${operation}:${key}`]);
        const prior = await tx.query<StoredAnswer>(
          `SELECT request_hash, response_status, response_body FROM orders.api_requests
            WHERE operation = $1 AND idempotency_key = $2`,
          [operation, key],
        );
        const row = prior.rows[0];
        if (row) {
          await tx.query('COMMIT');
          if (row.request_hash !== hash) return { kind: 'keyReused' };
          return { kind: 'done', status: row.response_status, body: row.response_body as T, replayed: true };
        }
      }
      const outcome = await work(tx);
      if (outcome.kind !== 'done') {
        // Refusals are not remembered: the same key may succeed once the order exists or changes.
        await tx.query('ROLLBACK');
        return outcome;
      }
      if (key !== undefined) {
        await tx.query(
          `INSERT INTO orders.api_requests
             (operation, idempotency_key, request_hash, order_id, response_status, response_body)
           VALUES ($1, $2, $3, $4, $5, $6)`,
          [operation, key, hash, outcome.orderId, outcome.status, JSON.stringify(outcome.body)],
        );
      }
      await tx.query('COMMIT');
      return { kind: 'done', status: outcome.status, body: outcome.body, replayed: false };
    } catch (err) {
      await tx.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      tx.release();
    }
  }

  /**
   * Creates a PENDING order with its lines and an `order.placed` (v2) outbox event, in one
   * transaction. Idempotent per Idempotency-Key; without a key every call is a new order.
   */
  placeOrder(req: PlaceOrderRequest, key?: string): Promise<WriteOutcome<OrderCreated>> {
    return this.idempotent<OrderCreated>('placeOrder', key, req, async (tx) => {
      const orderId = `ord-${randomUUID()}`;
      const totalMinor = req.items.reduce((sum, i) => sum + i.quantity * i.unitPriceMinor, 0);
      await tx.query(
        `INSERT INTO orders.orders (order_id, customer_id, currency, total_minor, status, is_loyalty_member)
         VALUES ($1, $2, $3, $4, 'PENDING', $5)`,
        [orderId, req.customerId, req.currency, totalMinor, req.isLoyaltyMember],
      );
      for (const [i, item] of req.items.entries()) {
        await tx.query(
          'INSERT INTO orders.order_lines (order_id, line_no, sku, quantity, unit_price_minor) VALUES ($1, $2, $3, $4, $5)',
          [orderId, i + 1, item.sku, item.quantity, item.unitPriceMinor],
        );
      }
      const placed = orderPlaced({
        orderId,
        userId: req.customerId,
        items: req.items,
        totalMinor,
        currency: req.currency,
        paymentToken: req.paymentToken,
        isLoyaltyMember: req.isLoyaltyMember,
      });
      await this.outbox.emit(tx, placed);
      const body: OrderCreated = {
        orderId,
        status: 'PENDING',
        totalMinor,
        currency: req.currency,
        eventId: placed.event.eventId,
      };
      return { kind: 'done', status: 201, body, replayed: false, orderId };
    });
  }

  /**
   * Emits `order.cancelled` for an order that is still PENDING; the saga decides whether it can
   * still stop (only before payment). Idempotent per Idempotency-Key.
   */
  cancelOrder(orderId: string, req: CancelOrderRequest, key?: string): Promise<WriteOutcome<CancelAccepted>> {
    return this.idempotent<CancelAccepted>('cancelOrder', key, { orderId, ...req }, async (tx) => {
      const { rows } = await tx.query<{ customer_id: string; status: string }>(
        'SELECT customer_id, status FROM orders.orders WHERE order_id = $1 FOR SHARE',
        [orderId],
      );
      const order = rows[0];
      if (!order) return { kind: 'notFound' };
      if (order.status !== 'PENDING') return { kind: 'notCancellable', status: order.status };
      const cancelled = orderCancelled({ orderId, userId: order.customer_id, reason: req.reason });
      await this.outbox.emit(tx, cancelled);
      return {
        kind: 'done',
        status: 202,
        body: { orderId, cancelRequested: true, eventId: cancelled.event.eventId },
        replayed: false,
        orderId,
      };
    });
  }

  /** The order and its lines, or null. */
  async getOrder(orderId: string) {
    const { rows } = await this.db.query<{
      order_id: string;
      customer_id: string;
      status: 'PENDING' | 'CONFIRMED' | 'FAILED';
      failure_reason: string | null;
      currency: string;
      total_minor: string;
      created_at: Date;
      updated_at: Date;
    }>('SELECT * FROM orders.orders WHERE order_id = $1', [orderId]);
    const o = rows[0];
    if (!o) return null;
    const lines = await this.db.query<{ sku: string; quantity: number; unit_price_minor: string }>(
      'SELECT sku, quantity, unit_price_minor FROM orders.order_lines WHERE order_id = $1 ORDER BY line_no',
      [orderId],
    );
    return {
      orderId: o.order_id,
      customerId: o.customer_id,
      status: o.status,
      failureReason: o.failure_reason,
      currency: o.currency,
      totalMinor: toSafeInteger(o.total_minor, 'total_minor'),
      items: lines.rows.map((l) => ({
        sku: l.sku,
        quantity: l.quantity,
        unitPriceMinor: toSafeInteger(l.unit_price_minor, 'unit_price_minor'),
      })),
      createdAt: o.created_at.toISOString(),
      updatedAt: o.updated_at.toISOString(),
    };
  }
}
