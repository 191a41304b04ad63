-- The simulated card gateway's own ledger: an external company's books, not the payments service's.
CREATE TABLE charges (
  charge_id text PRIMARY KEY DEFAULT ('ch_' || replace(gen_random_uuid()::text, '-', '')),
  idempotency_key text NOT NULL UNIQUE,
  amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
  currency char(3) NOT NULL,
  card_token text NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('captured', 'declined')),
  decline_reason text,
  refunded_minor bigint NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE refunds (
  refund_id text PRIMARY KEY DEFAULT ('re_' || replace(gen_random_uuid()::text, '-', '')),
  idempotency_key text NOT NULL UNIQUE,
  charge_id text NOT NULL REFERENCES charges (charge_id),
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Every request the gateway saw, including the ones it failed on purpose: lets tests count retries.
CREATE TABLE requests (
  request_id bigserial PRIMARY KEY,
  operation text NOT NULL CHECK (operation IN ('charge', 'refund')),
  idempotency_key text NOT NULL,
  result text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX requests_idempotency_key ON requests (idempotency_key);
