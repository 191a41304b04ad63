-- An operator's order to move one record that keeps breaking the handler (a bug, an unforeseen case: not
-- bad data, which is dead-lettered at once) to the dead-letter topic, so its partition continues.
-- `orders blocked dead-letter` writes the row; the ingress acts on it at the record's next retry.
CREATE TABLE handler_error_releases (
  source_topic text NOT NULL,
  source_partition integer NOT NULL,
  source_offset bigint NOT NULL,
  operator text NOT NULL,
  reason text NOT NULL,
  requested_at timestamptz NOT NULL DEFAULT now(),
  -- Set once the dead letter is on the broker: a redelivery of the record (crash before the offset commit)
  -- then skips it without writing a second dead letter.
  dead_lettered_at timestamptz,
  PRIMARY KEY (source_topic, source_partition, source_offset)
);
