-- The ingress's own memory of what it handled. Outlives Temporal's retention, so a duplicate that
-- arrives after the workflow history is gone still cannot start a second saga.

-- One row per event the ingress handled (poison records are in the dead-letter topic, not here).
CREATE TABLE processed_events (
  event_id uuid PRIMARY KEY,
  event_type text NOT NULL,
  order_id text NOT NULL,
  -- STARTED, ALREADY_STARTED, DUPLICATE_ORDER, SIGNALLED, CANCEL_PENDING, CANCEL_TOO_LATE
  outcome text NOT NULL,
  source_topic text NOT NULL,
  source_partition integer NOT NULL,
  source_offset bigint NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_order_idx ON processed_events (order_id);
CREATE INDEX processed_events_topic_idx ON processed_events (source_topic);

-- One row per order whose saga was started: a second order.placed for the order is a duplicate.
CREATE TABLE order_sagas (
  order_id text PRIMARY KEY,
  workflow_id text NOT NULL,
  first_event_id uuid NOT NULL,
  source_topic text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now()
);

-- A cancel that overtook its order.placed (they travel on different topics): applied at start.
CREATE TABLE pending_cancels (
  order_id text PRIMARY KEY,
  event_id uuid NOT NULL,
  reason text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);
