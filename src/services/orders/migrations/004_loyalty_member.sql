-- Whether the customer was a loyalty member when the order was placed (order.placed v2), so that
-- order.confirmed v2 carries it and the loyalty service needs nothing but that event.
ALTER TABLE orders ADD COLUMN is_loyalty_member boolean NOT NULL DEFAULT false;
