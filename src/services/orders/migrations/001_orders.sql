CREATE TABLE orders (
  order_id text PRIMARY KEY,
  customer_id text NOT NULL,
  currency char(3) NOT NULL,
  total_minor bigint NOT NULL CHECK (total_minor >= 0),
  status text NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'FAILED')),
  failure_reason text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'FAILED') = (failure_reason IS NOT NULL))
);

CREATE TABLE order_lines (
  order_id text NOT NULL REFERENCES orders (order_id),
  line_no integer NOT NULL,
  sku text NOT NULL,
  quantity integer NOT NULL CHECK (quantity > 0),
  unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
  PRIMARY KEY (order_id, line_no)
);

-- Outcome of every idempotent request: a repeated key returns the recorded outcome instead of acting again.
CREATE TABLE idempotency_keys (
  key text PRIMARY KEY,
  operation text NOT NULL,
  outcome jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
