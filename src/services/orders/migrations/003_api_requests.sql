-- Idempotency-Key of the HTTP API: a retried request gets the first request's answer instead of a
-- second order. Written in the same transaction as the order (or cancel) and its outbox row.
CREATE TABLE api_requests (
  operation text NOT NULL,
  idempotency_key text NOT NULL,
  -- SHA-256 of the canonical request: the same key with another body is refused, not replayed.
  request_hash text NOT NULL,
  order_id text NOT NULL,
  response_status integer NOT NULL,
  response_body jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (operation, idempotency_key)
);
