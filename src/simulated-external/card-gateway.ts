import { setTimeout as sleep } from 'node:timers/promises';

import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';

import { toSafeInteger } from '../db/pools';
import { prepared } from '../db/prepared';
import { FailureType } from '../shared/saga-contract';

export interface ChargeRequest {
  /** Same key, same charge: a repeated request returns the first outcome and moves no money. */
  idempotencyKey: string;
  amountMinor: number;
  currency: string;
  cardToken: string;
}

export type ChargeResult =
  | { outcome: 'captured'; chargeId: string; amountMinor: number; currency: string }
  | { outcome: 'declined'; chargeId: string; declineReason: string };

export interface RefundRequest {
  idempotencyKey: string;
  /** The idempotency key the charge was made with; the gateway finds the charge by it. */
  chargeIdempotencyKey: string;
}

export type RefundResult =
  | { outcome: 'refunded'; refundId: string; chargeId: string; amountMinor: number; currency: string }
  /** No captured charge under that key: nothing was taken, so nothing is given back. */
  | { outcome: 'nothing-to-refund'; reason: 'no-charge' | 'declined' };

/** A card gateway as the payments service sees it (a real one would sit behind HTTP). */
export interface CardGateway {
  charge(req: ChargeRequest): Promise<ChargeResult>;
  refund(req: RefundRequest): Promise<RefundResult>;
}

export interface GatewayBehaviour {
  /** Probability in [0, 1] that a new charge is declined. */
  declineRate: number;
  /** Probability in [0, 1] that a request fails with a transient error before doing anything. */
  transientErrorRate: number;
  /**
   * Time the gateway takes to answer, drawn uniformly. Spent after the charge is booked, as a slow
   * network would, so a caller that dies meanwhile leaves a charge it never heard about.
   */
  latencyMs: { min: number; max: number };
  /** Source of randomness; per request the transient draw comes first, then decline, then latency. */
  random?: () => number;
}

/** Cards that always decline, like the test cards of real gateways. */
export const DECLINED_CARD_TOKEN = 'tok_declined';

interface ChargeRow {
  charge_id: string;
  amount_minor: string;
  currency: string;
  outcome: 'captured' | 'declined';
  decline_reason: string | null;
  refunded_minor: string;
}

/**
 * A simulated external card gateway with its own ledger (schema `card_gateway`, its own role).
 * It honours idempotency keys the way real gateways do: the first request under a key decides the
 * outcome, repeats return it, and a repeat with a different amount is refused.
 */
export class SimulatedCardGateway implements CardGateway {
  private readonly random: () => number;

  constructor(
    private readonly db: pg.Pool,
    private readonly behaviour: GatewayBehaviour,
  ) {
    this.random = behaviour.random ?? Math.random;
  }

  async charge(req: ChargeRequest): Promise<ChargeResult> {
    await this.maybeFailTransiently('charge', req.idempotencyKey);
    const declined = req.cardToken === DECLINED_CARD_TOKEN || this.random() < this.behaviour.declineRate;
    const result = await this.inTransaction(async (client) => {
      await client.query(
        prepared(
          `INSERT INTO card_gateway.charges (idempotency_key, amount_minor, currency, card_token, outcome, decline_reason)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING`,
          [
            req.idempotencyKey,
            req.amountMinor,
            req.currency,
            req.cardToken,
            declined ? 'declined' : 'captured',
            declined ? 'insufficient_funds' : null,
          ],
        ),
      );
      const { rows } = await client.query<ChargeRow>('SELECT * FROM card_gateway.charges WHERE idempotency_key = $1', [
        req.idempotencyKey,
      ]);
      const row = rows[0];
      if (!row) throw new Error(`charge ${req.idempotencyKey} vanished`);
      if (toSafeInteger(row.amount_minor, 'amount') !== req.amountMinor || row.currency !== req.currency) {
        throw ApplicationFailure.nonRetryable(
          `idempotency key ${req.idempotencyKey} was used for a different charge`,
          FailureType.IdempotencyKeyReused,
        );
      }
      const charged: ChargeResult =
        row.outcome === 'captured'
          ? { outcome: 'captured', chargeId: row.charge_id, amountMinor: req.amountMinor, currency: req.currency }
          : { outcome: 'declined', chargeId: row.charge_id, declineReason: row.decline_reason ?? 'declined' };
      await this.log(client, 'charge', req.idempotencyKey, charged.outcome);
      return charged;
    });
    await this.respondLatency();
    return result;
  }

  async refund(req: RefundRequest): Promise<RefundResult> {
    await this.maybeFailTransiently('refund', req.idempotencyKey);
    const result = await this.inTransaction(async (client): Promise<RefundResult> => {
      // Lock the charge first so two refunds of one charge under different keys cannot both pass.
      const { rows } = await client.query<ChargeRow>(
        'SELECT * FROM card_gateway.charges WHERE idempotency_key = $1 FOR UPDATE',
        [req.chargeIdempotencyKey],
      );
      const charge = rows[0];
      const prior = await client.query<{
        refund_id: string;
        charge_id: string;
        amount_minor: string;
        currency: string;
      }>(
        prepared(
          `SELECT r.refund_id, r.charge_id, r.amount_minor, c.currency
         FROM card_gateway.refunds r JOIN card_gateway.charges c USING (charge_id) WHERE r.idempotency_key = $1`,
          [req.idempotencyKey],
        ),
      );
      const done = prior.rows[0];
      let refunded: RefundResult;
      if (done) {
        refunded = {
          outcome: 'refunded',
          refundId: done.refund_id,
          chargeId: done.charge_id,
          amountMinor: toSafeInteger(done.amount_minor, 'refund amount'),
          currency: done.currency,
        };
      } else if (!charge) {
        refunded = { outcome: 'nothing-to-refund', reason: 'no-charge' };
      } else if (charge.outcome === 'declined') {
        refunded = { outcome: 'nothing-to-refund', reason: 'declined' };
      } else {
        const amount = toSafeInteger(charge.amount_minor, 'amount') - toSafeInteger(charge.refunded_minor, 'refunded');
        if (amount <= 0) {
          throw ApplicationFailure.nonRetryable(
            `charge ${charge.charge_id} is already fully refunded under another key`,
            FailureType.IdempotencyKeyReused,
          );
        }
        const ins = await client.query<{ refund_id: string }>(
          prepared(
            `INSERT INTO card_gateway.refunds (idempotency_key, charge_id, amount_minor) VALUES ($1, $2, $3)
           RETURNING refund_id`,
            [req.idempotencyKey, charge.charge_id, amount],
          ),
        );
        await client.query(
          prepared('UPDATE card_gateway.charges SET refunded_minor = refunded_minor + $2 WHERE charge_id = $1', [
            charge.charge_id,
            amount,
          ]),
        );
        const refundId = ins.rows[0]?.refund_id;
        if (!refundId) throw new Error('refund insert returned no id');
        refunded = {
          outcome: 'refunded',
          refundId,
          chargeId: charge.charge_id,
          amountMinor: amount,
          currency: charge.currency,
        };
      }
      await this.log(client, 'refund', req.idempotencyKey, refunded.outcome);
      return refunded;
    });
    await this.respondLatency();
    return result;
  }

  private async inTransaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.db.connect();
    try {
      await client.query('BEGIN');
      const value = await fn(client);
      await client.query('COMMIT');
      return value;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  private async maybeFailTransiently(operation: 'charge' | 'refund', key: string): Promise<void> {
    if (this.random() >= this.behaviour.transientErrorRate) return;
    await this.db.query(
      prepared('INSERT INTO card_gateway.requests (operation, idempotency_key, result) VALUES ($1, $2, $3)', [
        operation,
        key,
        'unavailable',
      ]),
    );
    // Retryable on purpose: the gateway being briefly down is no verdict on the card.
    throw ApplicationFailure.retryable(`card gateway unavailable (${operation})`, FailureType.GatewayUnavailable);
  }

  private async log(client: pg.PoolClient, operation: string, key: string, result: string): Promise<void> {
    await client.query(
      prepared('INSERT INTO card_gateway.requests (operation, idempotency_key, result) VALUES ($1, $2, $3)', [
        operation,
        key,
        result,
      ]),
    );
  }

  private async respondLatency(): Promise<void> {
    const { min, max } = this.behaviour.latencyMs;
    if (max <= 0) return;
    await sleep(min + Math.floor(this.random() * (max - min + 1)));
  }
}
