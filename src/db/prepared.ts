import { createHash } from 'node:crypto';

import type pg from 'pg';

const names = new Map<string, string>();

/**
 * `text` with `values` as a named prepared statement: PostgreSQL parses and plans it once per
 * connection and then only binds and executes it, where an unnamed statement is parsed and planned
 * on every call (for the ingress ledger's statements that was about 0.15–0.25 ms of server CPU per
 * call; see BENCHMARKS.md, "Prepared statements").
 *
 * The name is derived from the text, so one text always has one name and two texts never share
 * one. Use it only for the fixed statements of a hot path: every distinct text stays prepared on
 * every connection that ran it. Keep `SELECT *` out of it, since a column added by a migration
 * while a connection holds the plan makes PostgreSQL refuse it ("cached plan must not change
 * result type"). Poolers must pass prepared statements through (PgBouncer in transaction mode
 * needs 1.21 or later with `max_prepared_statements` set).
 */
export function prepared(text: string, values: unknown[]): pg.QueryConfig {
  let name = names.get(text);
  if (name === undefined) {
    name = `kts_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    names.set(text, name);
  }
  return { name, text, values };
}
