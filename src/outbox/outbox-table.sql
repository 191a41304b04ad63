-- Transactional outbox: a row is written in the same transaction as the state change it announces.
-- Debezium reads the inserts from the WAL (a publication of the outbox tables, inserts only) and its
-- Outbox Event Router publishes `payload` unchanged to `topic`, keyed by `aggregateid`.
CREATE TABLE outbox (
  -- The event's eventId: consumers dedupe on it, so a re-published row never takes effect twice.
  id uuid PRIMARY KEY,
  aggregatetype text NOT NULL,
  aggregateid text NOT NULL,
  type text NOT NULL,
  topic text NOT NULL,
  -- Confluent-framed Avro, serialized by the service with the registry; Debezium passes the bytes through.
  payload bytea NOT NULL,
  traceparent text,
  tracestate text,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- The writing transaction: the cleaner deletes a row only once a snapshot that saw it is behind
  -- the replication slot's confirmed position, i.e. the row is provably on Kafka.
  tx_id xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX outbox_created_at ON outbox (created_at);
