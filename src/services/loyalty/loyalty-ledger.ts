/**
 * The loyalty service's state changes. Each consumed event is applied in ONE PostgreSQL transaction
 * holding the processed-event check (its eventId row), the effect (the order's points, the member's
 * balance, the outbox row announcing it) and the processed mark (that row's outcome). A redelivered
 * event finds its row and changes nothing; a crash before COMMIT leaves nothing, and the redelivery
 * does it all.
 */
import type pg from 'pg';

import { toSafeInteger } from '../../db/pools';
import { prepared } from '../../db/prepared';
import type { OrderConfirmed } from '../../events/rules';
import type { OutboxWriter } from '../../outbox/outbox-writer';
import { loyaltyKey, pointsAwarded, pointsFor, pointsRevoked } from './loyalty-events';

/** What applying one event did; recorded on its processed-event row. */
export type LoyaltyOutcome =
  /** A member's confirmed order earned points. */
  | 'AWARDED'
  /** A confirmed order that earns nothing: not a member (or a total below one currency unit). */
  | 'NO_POINTS'
  /** The order was already confirmed by another event: nothing more to award. */
  | 'ALREADY_CONFIRMED'
  /** The order was undone before its confirmation arrived (another topic overtook it): it earns nothing. */
  | 'UNDONE_BEFORE_CONFIRMED'
  /** Points the order had earned were taken back, exactly as many as were awarded. */
  | 'REVOKED'
  /** The undone order had earned nothing (non-member, or not yet confirmed): nothing to take back. */
  | 'NOTHING_TO_REVOKE'
  /** Another event already undid the order. */
  | 'ALREADY_UNDONE'
  /** This eventId was handled before: nothing changed. */
  | 'DUPLICATE_EVENT';

/** What one event did, and how many points it moved (awarded or revoked; 0 otherwise). */
export interface Applied {
  outcome: LoyaltyOutcome;
  points: number;
}

/** An event that takes a confirmed order's points back. */
export interface UndoFact {
  eventId: string;
  /** The undoing event's type, e.g. payments.payment-refunded: the revoked event's reason. */
  eventType: string;
  orderId: string;
}

/** The loyalty tables' figures for a set of orders (see {@link LoyaltyLedger.totalsFor}). */
export interface LoyaltyTotals {
  /** Orders whose order.confirmed the service has handled (member or not). */
  confirmationsHandled: number;
  /** Orders that earned points. */
  ordersAwarded: number;
  pointsAwarded: number;
  pointsRevoked: number;
}

export type LoyaltyFact = { kind: 'confirmed'; event: OrderConfirmed } | { kind: 'undone'; event: UndoFact };

/** Where the consumed record came from, kept on its processed-event row. */
export interface RecordPosition {
  topic: string;
  partition: number;
  offset: string;
}

interface OrderPointsRow {
  customer_id: string | null;
  awarded_points: string;
  confirmed_event_id: string | null;
  undone_event_id: string | null;
}

export class LoyaltyLedger {
  constructor(
    private readonly db: pg.Pool,
    private readonly outbox: OutboxWriter,
  ) {}

  /**
   * Applies one event, exactly once per eventId, in one transaction (see the module comment).
   * Throws on database or registry trouble, with everything rolled back: the caller retries the
   * same record and must not commit its offset.
   */
  async apply(fact: LoyaltyFact, at: RecordPosition): Promise<Applied> {
    const { eventId, orderId } = fact.event;
    const client = await this.db.connect();
    try {
      await client.query('BEGIN');
      // The check: first writer of the eventId wins; a concurrent duplicate waits here for its commit.
      const claimed = await client.query(
        prepared(
          `INSERT INTO loyalty.processed_events
           (event_id, event_type, order_id, outcome, source_topic, source_partition, source_offset)
         VALUES ($1, $2, $3, 'PENDING', $4, $5, $6) ON CONFLICT (event_id) DO NOTHING`,
          [eventId, fact.event.eventType, orderId, at.topic, at.partition, at.offset],
        ),
      );
      if (claimed.rowCount === 0) {
        await client.query('ROLLBACK');
        return { outcome: 'DUPLICATE_EVENT', points: 0 };
      }
      // One row per order, locked: a confirmation and an undo of the same order (different topics,
      // so possibly handled at the same moment) take turns.
      await client.query(
        prepared('INSERT INTO loyalty.order_points (order_id) VALUES ($1) ON CONFLICT (order_id) DO NOTHING', [
          orderId,
        ]),
      );
      const { rows } = await client.query<OrderPointsRow>(
        prepared(
          `SELECT customer_id, awarded_points, confirmed_event_id, undone_event_id
           FROM loyalty.order_points WHERE order_id = $1 FOR UPDATE`,
          [orderId],
        ),
      );
      const row = rows[0];
      if (!row) throw new Error(`order_points row of ${orderId} vanished under its lock`);
      const applied =
        fact.kind === 'confirmed'
          ? await this.confirm(client, fact.event, row)
          : await this.undo(client, fact.event, row);
      // The processed mark, in the same transaction as the effect.
      await client.query(
        prepared('UPDATE loyalty.processed_events SET outcome = $2 WHERE event_id = $1', [eventId, applied.outcome]),
      );
      await client.query('COMMIT');
      return applied;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  private async confirm(client: pg.PoolClient, e: OrderConfirmed, row: OrderPointsRow): Promise<Applied> {
    if (row.confirmed_event_id !== null) return { outcome: 'ALREADY_CONFIRMED', points: 0 };
    const undone = row.undone_event_id !== null;
    const points = undone ? 0 : pointsFor(e);
    await client.query(
      prepared(
        `UPDATE loyalty.order_points
          SET customer_id = $2, currency = $3, total_minor = $4, awarded_points = $5, confirmed_event_id = $6,
              updated_at = now()
        WHERE order_id = $1`,
        [e.orderId, e.customerId, e.currency, e.totalMinor, points, e.eventId],
      ),
    );
    if (undone) return { outcome: 'UNDONE_BEFORE_CONFIRMED', points: 0 };
    if (points === 0) return { outcome: 'NO_POINTS', points: 0 };
    await client.query(
      prepared(
        `INSERT INTO loyalty.balances (customer_id, points) VALUES ($1, $2)
       ON CONFLICT (customer_id) DO UPDATE SET points = loyalty.balances.points + EXCLUDED.points, updated_at = now()`,
        [e.customerId, points],
      ),
    );
    await this.outbox.emit(
      client,
      pointsAwarded({
        idempotencyKey: loyaltyKey(e.orderId),
        orderId: e.orderId,
        customerId: e.customerId,
        points,
        totalMinor: e.totalMinor,
        currency: e.currency,
        sourceEventId: e.eventId,
      }),
    );
    return { outcome: 'AWARDED', points };
  }

  private async undo(client: pg.PoolClient, e: UndoFact, row: OrderPointsRow): Promise<Applied> {
    if (row.undone_event_id !== null) return { outcome: 'ALREADY_UNDONE', points: 0 };
    // Exactly what was awarded: the recorded figure, never a recomputation from the undoing event.
    const points = toSafeInteger(row.awarded_points, 'awarded points');
    await client.query(
      prepared(
        `UPDATE loyalty.order_points
          SET undone_event_id = $2, undone_by = $3, revoked_points = $4, updated_at = now()
        WHERE order_id = $1`,
        [e.orderId, e.eventId, e.eventType, points],
      ),
    );
    if (points === 0 || row.customer_id === null) return { outcome: 'NOTHING_TO_REVOKE', points: 0 };
    await client.query(
      prepared('UPDATE loyalty.balances SET points = points - $2, updated_at = now() WHERE customer_id = $1', [
        row.customer_id,
        points,
      ]),
    );
    await this.outbox.emit(
      client,
      pointsRevoked({
        idempotencyKey: loyaltyKey(e.orderId),
        orderId: e.orderId,
        customerId: row.customer_id,
        points,
        reason: e.eventType,
        sourceEventId: e.eventId,
      }),
    );
    return { outcome: 'REVOKED', points };
  }

  /**
   * What the service's own tables say about these orders (not a tally kept in memory, so a restart
   * or a second instance of the consumer cannot skew it): how many confirmations it has handled,
   * how many of those earned points, and the points awarded and revoked.
   */
  async totalsFor(orderIds: readonly string[]): Promise<LoyaltyTotals> {
    const { rows } = await this.db.query<{
      confirmed: string;
      awarded_orders: string;
      awarded: string;
      revoked: string;
    }>(
      prepared(
        `SELECT count(*) FILTER (WHERE confirmed_event_id IS NOT NULL) AS confirmed,
              count(*) FILTER (WHERE awarded_points > 0) AS awarded_orders,
              coalesce(sum(awarded_points), 0) AS awarded,
              coalesce(sum(revoked_points), 0) AS revoked
         FROM loyalty.order_points WHERE order_id = ANY($1)`,
        [orderIds],
      ),
    );
    const r = rows[0];
    return {
      confirmationsHandled: toSafeInteger(r?.confirmed ?? '0', 'confirmations handled'),
      ordersAwarded: toSafeInteger(r?.awarded_orders ?? '0', 'orders awarded'),
      pointsAwarded: toSafeInteger(r?.awarded ?? '0', 'points awarded'),
      pointsRevoked: toSafeInteger(r?.revoked ?? '0', 'points revoked'),
    };
  }

  /** A member's balance (0 when the service never heard of them). */
  async balance(customerId: string): Promise<number> {
    const { rows } = await this.db.query<{ points: string }>(
      prepared('SELECT points FROM loyalty.balances WHERE customer_id = $1', [customerId]),
    );
    return rows[0] ? toSafeInteger(rows[0].points, 'balance') : 0;
  }
}
