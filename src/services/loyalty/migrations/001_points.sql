-- Every consumed event the loyalty service has handled, written in the same transaction as its
-- effect: a redelivered event (same eventId) finds its row and changes nothing.
CREATE TABLE processed_events (
  event_id uuid PRIMARY KEY,
  event_type text NOT NULL,
  order_id text NOT NULL,
  -- What handling it did (AWARDED, NOT_MEMBER, REVOKED, ...): the audit of every decision.
  outcome text NOT NULL,
  source_topic text NOT NULL,
  source_partition integer NOT NULL,
  source_offset bigint NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_order ON processed_events (order_id);

-- One row per order the service has heard of: what its confirmation earned and whether an event that
-- undid the order took it back. Keyed by order, so a second confirmation or undo of the same order
-- (another eventId) cannot award or revoke twice, and an undo that overtakes its confirmation (they
-- travel on different topics) leaves a row that makes the later confirmation earn nothing.
CREATE TABLE order_points (
  order_id text PRIMARY KEY,
  customer_id text,
  currency char(3),
  total_minor bigint CHECK (total_minor >= 0),
  awarded_points bigint NOT NULL DEFAULT 0 CHECK (awarded_points >= 0),
  revoked_points bigint NOT NULL DEFAULT 0 CHECK (revoked_points >= 0 AND revoked_points <= awarded_points),
  confirmed_event_id uuid,
  undone_event_id uuid,
  undone_by text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Each member's balance, moved in the same transaction as the order's row.
CREATE TABLE balances (
  customer_id text PRIMARY KEY,
  points bigint NOT NULL CHECK (points >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);
