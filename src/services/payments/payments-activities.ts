import type pg from 'pg';

import { BusinessRejection, runIdempotent } from '../../db/idempotent';
import { prepared } from '../../db/prepared';
import type { OutboxWriter } from '../../outbox/outbox-writer';
import { FailureType } from '../../shared/saga-contract';
import type { CardGateway } from '../../simulated-external/card-gateway';
import { paymentCaptured, paymentRefunded } from './payments-events';

export interface PaymentsDeps {
  /** Pool logged in as the payments role (schema `payments` only). */
  db: pg.Pool;
  gateway: CardGateway;
  /** Appends payment-captured / payment-refunded in the transaction of the change. */
  outbox: OutboxWriter;
}

export interface ChargePaymentInput {
  idempotencyKey: string;
  orderId: string;
  amountMinor: number;
  currency: string;
  paymentToken: string;
}

export interface Payment {
  chargeKey: string;
  orderId: string;
  gatewayChargeId: string;
  amountMinor: number;
  currency: string;
}

export interface RefundPaymentInput {
  idempotencyKey: string;
  /** The idempotency key of the chargePayment step to undo. */
  chargeKey: string;
  orderId: string;
}

export interface Refund {
  chargeKey: string;
  /** Null when nothing had been captured (no charge, or declined): nothing to give back. */
  gatewayRefundId: string | null;
  amountMinor: number;
}

/** Activities of the payments service, in front of the external card gateway. */
export function createPaymentsActivities({ db, gateway, outbox }: PaymentsDeps) {
  return {
    /**
     * Captures the order's amount through the card gateway, passing the step's idempotency key to
     * it, so a retry after a crash between the gateway's answer and our record charges nothing more.
     * A capture writes payments.payment-captured in the same transaction as the payment row.
     * Idempotent by key (a repeat returns the recorded payment without calling the gateway).
     * Rejects: PaymentDeclined (recorded as a DECLINED payment; no event, no money moved). Transient gateway errors are
     * retryable (GatewayUnavailable). Compensation: {@link refundPayment}.
     */
    chargePayment: async (input: ChargePaymentInput): Promise<Payment> => {
      const { idempotencyKey, orderId, amountMinor, currency, paymentToken } = input;
      const recorded = await db.query<{ outcome: unknown }>(
        prepared('SELECT outcome FROM payments.idempotency_keys WHERE key = $1 AND outcome IS NOT NULL', [
          idempotencyKey,
        ]),
      );
      // Recorded already: skip the gateway round trip; runIdempotent below replays the outcome.
      const charge =
        recorded.rowCount === 0
          ? await gateway.charge({ idempotencyKey, amountMinor, currency, cardToken: paymentToken })
          : undefined;
      return runIdempotent(db, 'payments', idempotencyKey, 'chargePayment', async (tx) => {
        if (!charge) throw new Error(`charge ${idempotencyKey} has no gateway answer`);
        if (charge.outcome === 'declined') {
          await tx.query(
            prepared(
              `INSERT INTO payments.payments (charge_key, order_id, amount_minor, currency, status, gateway_charge_id, decline_reason)
             VALUES ($1, $2, $3, $4, 'DECLINED', $5, $6)`,
              [idempotencyKey, orderId, amountMinor, currency, charge.chargeId, charge.declineReason],
            ),
          );
          // The decline is a fact worth keeping next to the refusal, so this rejection keeps its writes.
          throw new BusinessRejection(FailureType.PaymentDeclined, `card declined: ${charge.declineReason}`, {
            keepWrites: true,
          });
        }
        await tx.query(
          prepared(
            `INSERT INTO payments.payments (charge_key, order_id, amount_minor, currency, status, gateway_charge_id)
           VALUES ($1, $2, $3, $4, 'CAPTURED', $5)`,
            [idempotencyKey, orderId, amountMinor, currency, charge.chargeId],
          ),
        );
        // The event states what the gateway captured, in its own words.
        const captured = { chargeId: charge.chargeId, amountMinor: charge.amountMinor, currency: charge.currency };
        await outbox.emit(tx, paymentCaptured({ idempotencyKey, orderId, ...captured }));
        return { chargeKey: idempotencyKey, orderId, gatewayChargeId: charge.chargeId, amountMinor, currency };
      });
    },

    /**
     * Compensation of chargePayment: refunds whatever the gateway captured under the charge's key.
     * Asks the gateway rather than our table, because a crash may have left a charge we never
     * recorded. Writes payments.payment-refunded in the same transaction as the REFUNDED record.
     * Idempotent by key (the gateway honours it too); a no-op (no event) when nothing was captured.
     */
    refundPayment: async ({ idempotencyKey, chargeKey, orderId }: RefundPaymentInput): Promise<Refund> => {
      const refund = await gateway.refund({ idempotencyKey, chargeIdempotencyKey: chargeKey });
      return runIdempotent(db, 'payments', idempotencyKey, 'refundPayment', async (tx) => {
        if (refund.outcome === 'nothing-to-refund') return { chargeKey, gatewayRefundId: null, amountMinor: 0 };
        const updated = await tx.query(
          prepared(
            `UPDATE payments.payments SET status = 'REFUNDED', refund_key = $2, gateway_refund_id = $3, updated_at = now()
           WHERE charge_key = $1`,
            [chargeKey, idempotencyKey, refund.refundId],
          ),
        );
        if (updated.rowCount === 0) {
          // The gateway captured a charge whose record was lost with a crashed attempt: record both now.
          await tx.query(
            prepared(
              `INSERT INTO payments.payments
               (charge_key, order_id, amount_minor, currency, status, gateway_charge_id, refund_key, gateway_refund_id)
             VALUES ($1, $2, $3, $4, 'REFUNDED', $5, $6, $7)`,
              [
                chargeKey,
                orderId,
                refund.amountMinor,
                refund.currency,
                refund.chargeId,
                idempotencyKey,
                refund.refundId,
              ],
            ),
          );
        }
        const { chargeId, refundId, amountMinor, currency } = refund;
        await outbox.emit(tx, paymentRefunded({ idempotencyKey, orderId, chargeId, refundId, amountMinor, currency }));
        return { chargeKey, gatewayRefundId: refund.refundId, amountMinor: refund.amountMinor };
      });
    },
  };
}

export type PaymentsActivities = ReturnType<typeof createPaymentsActivities>;
