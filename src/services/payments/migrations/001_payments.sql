-- One row per chargePayment step, keyed by its idempotency key (also the key sent to the gateway).
CREATE TABLE payments (
  charge_key text PRIMARY KEY,
  order_id text NOT NULL,
  amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
  currency char(3) NOT NULL,
  status text NOT NULL CHECK (status IN ('CAPTURED', 'DECLINED', 'REFUNDED')),
  gateway_charge_id text,
  decline_reason text,
  refund_key text,
  gateway_refund_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_order_id ON payments (order_id);

-- Outcome of every idempotent request: a repeated key returns the recorded outcome instead of acting again.
CREATE TABLE idempotency_keys (
  key text PRIMARY KEY,
  operation text NOT NULL,
  outcome jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
