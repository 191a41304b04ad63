-- The CHECK is the last line of defence; reserveStock never even tries to go below zero.
CREATE TABLE stock (
  sku text PRIMARY KEY,
  available integer NOT NULL CHECK (available >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Keyed by the reserveStock idempotency key, so releasing finds exactly what that step took.
CREATE TABLE reservations (
  reservation_key text PRIMARY KEY,
  order_id text NOT NULL,
  status text NOT NULL CHECK (status IN ('RESERVED', 'RELEASED')),
  created_at timestamptz NOT NULL DEFAULT now(),
  released_at timestamptz
);
CREATE INDEX reservations_order_id ON reservations (order_id);

CREATE TABLE reservation_lines (
  reservation_key text NOT NULL REFERENCES reservations (reservation_key),
  sku text NOT NULL REFERENCES stock (sku),
  quantity integer NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (reservation_key, sku)
);

-- Outcome of every idempotent request: a repeated key returns the recorded outcome instead of acting again.
CREATE TABLE idempotency_keys (
  key text PRIMARY KEY,
  operation text NOT NULL,
  outcome jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
