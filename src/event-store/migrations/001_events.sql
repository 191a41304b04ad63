-- The event store: every domain event once (by eventId), as written, in the order it was stored.
CREATE TABLE events (
  seq bigserial PRIMARY KEY,
  event_id uuid NOT NULL UNIQUE,
  event_type text NOT NULL,
  event_version integer NOT NULL,
  order_id text NOT NULL,
  occurred_at timestamptz NOT NULL,
  -- The decoded event (longs are safe integers, so JSON keeps them exact) and the record as it was
  -- on Kafka (Confluent-framed Avro), so a replay sends the very same bytes.
  payload jsonb NOT NULL,
  raw bytea NOT NULL,
  schema_id integer NOT NULL,
  source_topic text NOT NULL,
  source_partition integer NOT NULL,
  source_offset bigint NOT NULL,
  traceparent text,
  stored_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_order ON events (order_id, occurred_at, seq);
CREATE INDEX events_type_time ON events (event_type, occurred_at);

-- Records that can never decode: kept (not dropped, not blocking) so they can be looked at.
CREATE TABLE rejected_records (
  source_topic text NOT NULL,
  source_partition integer NOT NULL,
  source_offset bigint NOT NULL,
  reason text NOT NULL,
  message text NOT NULL,
  raw bytea,
  rejected_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source_topic, source_partition, source_offset)
);

-- Append-only: history is never rewritten, not even by the store's own role.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the event store is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
