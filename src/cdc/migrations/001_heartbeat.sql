-- Each Debezium connector's heartbeat inserts a row here (see heartbeat.action.query in
-- src/cdc/outbox-connector.ts); the publication includes the table so the insert reaches Debezium
-- and moves the slot on while the outboxes are idle. Shaped like an outbox table, because the
-- outbox router reads the same columns; the payload stays empty.
CREATE TABLE IF NOT EXISTS heartbeat (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  aggregateid text NOT NULL,
  type text NOT NULL,
  topic text NOT NULL,
  payload bytea NOT NULL DEFAULT ''::bytea,
  traceparent text,
  tracestate text,
  created_at timestamptz NOT NULL DEFAULT now()
);
