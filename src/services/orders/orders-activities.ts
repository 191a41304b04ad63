import type pg from 'pg';
import { z } from 'zod';

import { BusinessRejection, runIdempotent } from '../../db/idempotent';
import { toSafeInteger } from '../../db/pools';
import { prepared } from '../../db/prepared';
import type { OutboxWriter } from '../../outbox/outbox-writer';
import type { CompensationStep, OrderDetails, ParkedDecisionKind } from '../../shared/saga-contract';
import { FailureType } from '../../shared/saga-contract';
import { orderConfirmed, orderFailed, orderParkedDecision } from './orders-events';

export interface OrdersDeps {
  /** Pool logged in as the orders role (schema `orders` only). */
  db: pg.Pool;
  /** Appends order.confirmed / order.failed in the transaction of the change. */
  outbox: OutboxWriter;
}

export interface CreateOrderInput {
  idempotencyKey: string;
  order: OrderDetails;
}

export interface CreatedOrder {
  orderId: string;
  totalMinor: number;
  currency: string;
}

export interface OrderTransitionInput {
  idempotencyKey: string;
  orderId: string;
}

export interface FailOrderInput extends OrderTransitionInput {
  reason: string;
}

export interface OrderTransition {
  orderId: string;
  status: 'CONFIRMED' | 'FAILED' | 'MISSING';
  /** False when the order was already in that state (nothing changed). */
  changed: boolean;
}

const positiveInt = z.number().int().positive();
const orderSchema = z.object({
  orderId: z.string().min(1).max(200),
  customerId: z.string().min(1).max(200),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code'),
  paymentToken: z.string().min(1),
  items: z
    .array(
      z.object({
        sku: z.string().min(1).max(200),
        quantity: positiveInt.max(1_000_000),
        unitPriceMinor: z.number().int().min(0),
      }),
    )
    .min(1, 'an order needs at least one line'),
});

function totalOf(order: OrderDetails): number {
  const total = order.items.reduce((sum, i) => sum + i.quantity * i.unitPriceMinor, 0);
  if (!Number.isSafeInteger(total)) throw new BusinessRejection(FailureType.InvalidOrder, 'order total overflows');
  return total;
}

/**
 * The failure type of a saga failure reason. The saga passes `<FailureType>: <message>` (see its
 * failureReason); anything else, e.g. a manual call, is reported as Unknown rather than guessed.
 */
export function failureTypeOf(reason: string): string {
  const m = /^([A-Za-z][A-Za-z0-9]*): /.exec(reason);
  return m?.[1] ?? 'Unknown';
}

export interface RecordParkedDecisionInput {
  idempotencyKey: string;
  orderId: string;
  decision: ParkedDecisionKind;
  operator: string;
  reason: string | null;
  failedSteps: CompensationStep[];
  round: number;
  /** When the saga took the decision (workflow time, epoch ms), so a retried attempt writes the same fact. */
  decidedAt: number;
}

interface OrderRow {
  status: string;
  customer_id: string;
  currency: string;
  total_minor: string;
  is_loyalty_member: boolean;
}

/** Activities of the orders service: the order's lifecycle PENDING → CONFIRMED | FAILED. */
export function createOrdersActivities({ db, outbox }: OrdersDeps) {
  return {
    /**
     * Records the order as PENDING with its lines and returns its total.
     * Idempotent by key; an order that already exists with the same content (e.g. written by the
     * HTTP API before the event arrived) is accepted as is. Writes no outbox event: the fact is the
     * order.placed event that started the saga, already on its topic (and in the event store).
     * Rejects: InvalidOrder (malformed, or the id already holds different content).
     * Compensation: {@link failOrder}.
     */
    createOrder: async ({ idempotencyKey, order }: CreateOrderInput): Promise<CreatedOrder> => {
      return runIdempotent(db, 'orders', idempotencyKey, 'createOrder', async (tx) => {
        const parsed = orderSchema.safeParse(order);
        if (!parsed.success) {
          const why = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
          throw new BusinessRejection(FailureType.InvalidOrder, `invalid order: ${why}`);
        }
        const total = totalOf(order);
        const ins = await tx.query(
          prepared(
            `INSERT INTO orders.orders (order_id, customer_id, currency, total_minor, status, is_loyalty_member)
           VALUES ($1, $2, $3, $4, 'PENDING', $5) ON CONFLICT (order_id) DO NOTHING`,
            [order.orderId, order.customerId, order.currency, total, order.isLoyaltyMember ?? false],
          ),
        );
        if (ins.rowCount === 1) {
          for (const [i, item] of order.items.entries()) {
            await tx.query(
              prepared(
                'INSERT INTO orders.order_lines (order_id, line_no, sku, quantity, unit_price_minor) VALUES ($1, $2, $3, $4, $5)',
                [order.orderId, i + 1, item.sku, item.quantity, item.unitPriceMinor],
              ),
            );
          }
        } else {
          const existing = await tx.query<{ customer_id: string; currency: string; total_minor: string }>(
            prepared('SELECT customer_id, currency, total_minor FROM orders.orders WHERE order_id = $1', [
              order.orderId,
            ]),
          );
          const row = existing.rows[0];
          if (
            !row ||
            row.customer_id !== order.customerId ||
            row.currency !== order.currency ||
            toSafeInteger(row.total_minor, 'total') !== total
          ) {
            throw new BusinessRejection(FailureType.InvalidOrder, `order ${order.orderId} exists with other content`);
          }
        }
        return { orderId: order.orderId, totalMinor: total, currency: order.currency };
      });
    },

    /**
     * PENDING → CONFIRMED, with an order.confirmed event in the same transaction. Idempotent by key,
     * and a no-op (no event) on an already confirmed order.
     * Rejects: OrderNotPending if the order failed meanwhile. No compensation: it is the saga's pivot
     * (a later compensation, failOrder, moves it to FAILED).
     */
    confirmOrder: async ({ idempotencyKey, orderId }: OrderTransitionInput): Promise<OrderTransition> => {
      return runIdempotent(db, 'orders', idempotencyKey, 'confirmOrder', async (tx) => {
        const { rows } = await tx.query<OrderRow>(
          prepared(
            'SELECT status, customer_id, currency, total_minor, is_loyalty_member FROM orders.orders WHERE order_id = $1 FOR UPDATE',
            [orderId],
          ),
        );
        const row = rows[0];
        const status = row?.status;
        if (status === 'CONFIRMED') return { orderId, status: 'CONFIRMED', changed: false };
        if (status !== 'PENDING') {
          throw new BusinessRejection(
            FailureType.OrderNotPending,
            `order ${orderId} cannot be confirmed: ${status ?? 'missing'}`,
          );
        }
        await tx.query(
          prepared(`UPDATE orders.orders SET status = 'CONFIRMED', updated_at = now() WHERE order_id = $1`, [orderId]),
        );
        if (!row) throw new Error(`order ${orderId} vanished under its lock`);
        const totalMinor = toSafeInteger(row.total_minor, 'total');
        const { customer_id: customerId, currency, is_loyalty_member: isLoyaltyMember } = row;
        // v2: self-contained for the loyalty service (membership travels with the fact).
        await outbox.emit(
          tx,
          orderConfirmed({ idempotencyKey, orderId, customerId, totalMinor, currency, isLoyaltyMember }),
        );
        return { orderId, status: 'CONFIRMED', changed: true };
      });
    },

    /**
     * Compensation of createOrder: marks the order FAILED with the reason (from PENDING, or from
     * CONFIRMED when the saga is unwinding after the pivot), with an order.failed event in the same
     * transaction. Idempotent by key; a no-op (no event) when already FAILED, and when the order was
     * never created (reported as MISSING).
     */
    failOrder: async ({ idempotencyKey, orderId, reason }: FailOrderInput): Promise<OrderTransition> => {
      return runIdempotent(db, 'orders', idempotencyKey, 'failOrder', async (tx) => {
        const { rows } = await tx.query<Pick<OrderRow, 'status' | 'customer_id'>>(
          prepared('SELECT status, customer_id FROM orders.orders WHERE order_id = $1 FOR UPDATE', [orderId]),
        );
        const row = rows[0];
        const status = row?.status;
        if (!row || !status) return { orderId, status: 'MISSING', changed: false };
        if (status === 'FAILED') return { orderId, status: 'FAILED', changed: false };
        await tx.query(
          prepared(
            `UPDATE orders.orders SET status = 'FAILED', failure_reason = $2, updated_at = now() WHERE order_id = $1`,
            [orderId, reason],
          ),
        );
        const customerId = row.customer_id;
        await outbox.emit(
          tx,
          orderFailed({ idempotencyKey, orderId, customerId, failureType: failureTypeOf(reason), reason }),
        );
        return { orderId, status: 'FAILED', changed: true };
      });
    },

    /**
     * The audit trail of a parked saga: appends the operator's decision as an order.parked-decision
     * event to the orders outbox (→ Debezium → event store), so the order's history says who did what
     * and why. Changes no order state: what the decision does is the saga's business. Idempotent by
     * key (one event per parking round); the event id derives from the key, so a retried attempt
     * cannot write a second event.
     */
    recordParkedDecision: async (input: RecordParkedDecisionInput): Promise<{ eventId: string }> => {
      return runIdempotent(db, 'orders', input.idempotencyKey, 'recordParkedDecision', async (tx) => {
        const { decidedAt, ...facts } = input;
        const decided = orderParkedDecision({ ...facts, occurredAt: decidedAt });
        await outbox.emit(tx, decided);
        return { eventId: decided.event.eventId };
      });
    },
  };
}

export type OrdersActivities = ReturnType<typeof createOrdersActivities>;
