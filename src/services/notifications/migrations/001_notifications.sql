CREATE TABLE notifications (
  idempotency_key text PRIMARY KEY,
  order_id text NOT NULL,
  customer_id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('ORDER_RECEIVED', 'ORDER_CONFIRMED', 'ORDER_FAILED')),
  message text NOT NULL,
  channel text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_order_id ON notifications (order_id);

-- Outcome of every idempotent request: a repeated key returns the recorded outcome instead of acting again.
CREATE TABLE idempotency_keys (
  key text PRIMARY KEY,
  operation text NOT NULL,
  outcome jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
