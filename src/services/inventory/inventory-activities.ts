import type pg from 'pg';

import { BusinessRejection, runIdempotent, voidIfAbsent } from '../../db/idempotent';
import { prepared } from '../../db/prepared';
import type { OutboxWriter } from '../../outbox/outbox-writer';
import { FailureType } from '../../shared/saga-contract';
import { stockReleased, stockReserved } from './inventory-events';

export interface InventoryDeps {
  /** Pool logged in as the inventory role (schema `inventory` only). */
  db: pg.Pool;
  /** Appends stock-reserved / stock-released in the transaction of the change. */
  outbox: OutboxWriter;
}

export interface StockLine {
  sku: string;
  quantity: number;
}

export interface ReserveStockInput {
  idempotencyKey: string;
  orderId: string;
  items: StockLine[];
}

export interface Reservation {
  reservationKey: string;
  orderId: string;
  lines: StockLine[];
}

export interface ReleaseStockInput {
  idempotencyKey: string;
  /** The idempotency key of the reserveStock step to undo. */
  reservationKey: string;
  orderId: string;
}

export interface Release {
  reservationKey: string;
  /** What went back on the shelf; empty when nothing had been reserved. */
  released: StockLine[];
  /** True when the reservation had not happened yet and is now barred from happening. */
  voided: boolean;
}

/** Same SKU on two lines counts once; sorted so concurrent reservations lock rows in one order. */
function mergeLines(items: StockLine[]): StockLine[] {
  const bySku = new Map<string, number>();
  for (const { sku, quantity } of items) bySku.set(sku, (bySku.get(sku) ?? 0) + quantity);
  return [...bySku.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([sku, quantity]) => ({ sku, quantity }));
}

/** Activities of the inventory service: stock per SKU, reserved all-or-nothing. */
export function createInventoryActivities({ db, outbox }: InventoryDeps) {
  return {
    /**
     * Takes every line's quantity off the shelf, or nothing at all. Each decrement is conditional
     * (`available >= quantity`) under the row lock, so concurrent sagas can never push a SKU below zero.
     * Writes inventory.stock-reserved in the same transaction. Idempotent by key (the key is also the
     * reservation's id).
     * Rejects: OutOfStock (nothing reserved), StepVoided (its compensation already ran).
     * Compensation: {@link releaseStock}.
     */
    reserveStock: async ({ idempotencyKey, orderId, items }: ReserveStockInput): Promise<Reservation> => {
      return runIdempotent(db, 'inventory', idempotencyKey, 'reserveStock', async (tx) => {
        const lines = mergeLines(items);
        for (const line of lines) {
          const taken = await tx.query(
            prepared(
              `UPDATE inventory.stock SET available = available - $2, updated_at = now()
             WHERE sku = $1 AND available >= $2`,
              [line.sku, line.quantity],
            ),
          );
          if (taken.rowCount !== 1) {
            const { rows } = await tx.query<{ available: number }>(
              prepared('SELECT available FROM inventory.stock WHERE sku = $1', [line.sku]),
            );
            const available = rows[0]?.available ?? 0;
            throw new BusinessRejection(
              FailureType.OutOfStock,
              `out of stock: ${line.sku} (wanted ${line.quantity}, available ${available})`,
            );
          }
        }
        await tx.query(
          prepared(
            `INSERT INTO inventory.reservations (reservation_key, order_id, status) VALUES ($1, $2, 'RESERVED')`,
            [idempotencyKey, orderId],
          ),
        );
        for (const line of lines) {
          await tx.query(
            prepared('INSERT INTO inventory.reservation_lines (reservation_key, sku, quantity) VALUES ($1, $2, $3)', [
              idempotencyKey,
              line.sku,
              line.quantity,
            ]),
          );
        }
        await outbox.emit(tx, stockReserved({ idempotencyKey, orderId, lines }));
        return { reservationKey: idempotencyKey, orderId, lines };
      });
    },

    /**
     * Compensation of reserveStock: puts the reserved quantities back, with an
     * inventory.stock-released event in the same transaction. Idempotent by key; a no-op (no event)
     * when the reservation was rejected or already released. If the reservation has not happened at
     * all, it is voided so a late retry of reserveStock cannot take stock after the saga gave up.
     */
    releaseStock: async ({ idempotencyKey, reservationKey, orderId }: ReleaseStockInput): Promise<Release> => {
      return runIdempotent(db, 'inventory', idempotencyKey, 'releaseStock', async (tx) => {
        if (await voidIfAbsent(tx, 'inventory', reservationKey, 'reserveStock')) {
          return { reservationKey, released: [], voided: true };
        }
        const { rows } = await tx.query<{ status: string; order_id: string }>(
          prepared('SELECT status, order_id FROM inventory.reservations WHERE reservation_key = $1 FOR UPDATE', [
            reservationKey,
          ]),
        );
        const reservation = rows[0];
        if (!reservation || reservation.status === 'RELEASED') return { reservationKey, released: [], voided: false };
        if (reservation.order_id !== orderId) {
          throw new BusinessRejection(
            FailureType.IdempotencyKeyReused,
            `reservation ${reservationKey} belongs to order ${reservation.order_id}, not ${orderId}`,
          );
        }
        const lines = await tx.query<StockLine>(
          prepared('SELECT sku, quantity FROM inventory.reservation_lines WHERE reservation_key = $1 ORDER BY sku', [
            reservationKey,
          ]),
        );
        for (const line of lines.rows) {
          await tx.query(
            prepared('UPDATE inventory.stock SET available = available + $2, updated_at = now() WHERE sku = $1', [
              line.sku,
              line.quantity,
            ]),
          );
        }
        await tx.query(
          prepared(
            `UPDATE inventory.reservations SET status = 'RELEASED', released_at = now() WHERE reservation_key = $1`,
            [reservationKey],
          ),
        );
        await outbox.emit(tx, stockReleased({ idempotencyKey, orderId, lines: lines.rows }));
        return { reservationKey, released: lines.rows, voided: false };
      });
    },
  };
}

export type InventoryActivities = ReturnType<typeof createInventoryActivities>;
