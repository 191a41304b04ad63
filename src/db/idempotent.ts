import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import type pg from 'pg';

import { BUSINESS_OUTCOME_FAILURE_TYPES, FailureType } from '../shared/saga-contract';
import { prepared } from './prepared';

/**
 * Thrown by an idempotent operation's work to refuse the request for a business reason. Its effects
 * are rolled back, the refusal itself is recorded under the key (so a repeat gets the same answer),
 * and the caller receives a non-retryable ApplicationFailure of `type`.
 */
export class BusinessRejection extends Error {
  /** Keep what `work` wrote before refusing (e.g. a DECLINED payment row), instead of rolling it back. */
  readonly keepWrites: boolean;

  constructor(
    readonly type: FailureType,
    message: string,
    options: { keepWrites?: boolean } = {},
  ) {
    super(message);
    this.name = 'BusinessRejection';
    this.keepWrites = options.keepWrites ?? false;
  }
}

type Outcome<T> =
  { status: 'done'; value: T } | { status: 'rejected'; type: FailureType; message: string } | { status: 'voided' };

/** The SQL client of the transaction an operation runs in; add outbox rows through it too. */
export type Tx = pg.PoolClient;

function replay<T>(key: string, operation: string, row: { operation: string; outcome: Outcome<T> | null }): T {
  if (row.operation !== operation) {
    throw ApplicationFailure.nonRetryable(
      `idempotency key ${key} was used for ${row.operation}, not ${operation}`,
      FailureType.IdempotencyKeyReused,
    );
  }
  const outcome = row.outcome;
  if (!outcome) throw new Error(`idempotency key ${key} has no recorded outcome`);
  if (outcome.status === 'done') return outcome.value;
  if (outcome.status === 'voided') {
    throw ApplicationFailure.nonRetryable(
      `${operation} ${key} was voided by its compensation before it ran`,
      FailureType.StepVoided,
    );
  }
  // A declined card or missing stock is an outcome, not a fault: BENIGN keeps the SDK from logging
  // it as a warning with a stack trace on every worker (it logs it at debug instead).
  throw ApplicationFailure.create({
    message: outcome.message,
    type: outcome.type,
    nonRetryable: true,
    category: BUSINESS_OUTCOME_FAILURE_TYPES.includes(outcome.type) ? ApplicationFailureCategory.BENIGN : undefined,
  });
}

/**
 * Runs `work` at most once per key, in one transaction with the record of its outcome.
 *
 * The key row is inserted first: a concurrent duplicate blocks on it until the first commits, then
 * reads the committed outcome. A repeat returns the recorded value, or raises the recorded business
 * rejection again, without calling `work`. Any other error rolls everything back, so a retry starts
 * clean.
 *
 * A business rejection that keeps no writes rolls the whole transaction back, key included, and is
 * recorded by one statement of its own (see recordRefusal). That keeps a savepoint, one round trip on
 * every step, off the common path; the price is on the rare one: a duplicate waiting on the key runs
 * `work` itself, and whichever outcome is recorded first is every caller's answer.
 */
export async function runIdempotent<T>(
  pool: pg.Pool,
  schema: string,
  key: string,
  operation: string,
  work: (tx: Tx) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  const table = `${client.escapeIdentifier(schema)}.idempotency_keys`;
  try {
    await client.query('BEGIN');
    const claimed = await client.query(
      prepared(`INSERT INTO ${table} (key, operation) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING key`, [
        key,
        operation,
      ]),
    );
    if (claimed.rowCount === 0) {
      const row = await recordedOutcome<T>(client, table, key);
      await client.query('COMMIT');
      return replay(key, operation, row);
    }
    let outcome: Outcome<T>;
    try {
      outcome = { status: 'done', value: await work(client) };
    } catch (err) {
      if (!(err instanceof BusinessRejection)) throw err;
      outcome = { status: 'rejected', type: err.type, message: err.message };
      if (!err.keepWrites) {
        await client.query('ROLLBACK');
        return replay(key, operation, await recordRefusal<T>(client, table, key, operation, outcome));
      }
    }
    await client.query(prepared(`UPDATE ${table} SET outcome = $2 WHERE key = $1`, [key, JSON.stringify(outcome)]));
    await client.query('COMMIT');
    return replay(key, operation, { operation, outcome });
  } catch (err) {
    // Harmless after COMMIT (replay() throwing the recorded rejection): PostgreSQL only warns.
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Records a refusal whose transaction was rolled back, in one statement outside any transaction, and
 * returns the row that holds the key's outcome: this refusal, or what got there first (a duplicate
 * that claimed the key after the rollback, whose commit the insert waits for, or a compensation's
 * void).
 */
async function recordRefusal<T>(
  client: pg.PoolClient,
  table: string,
  key: string,
  operation: string,
  outcome: Outcome<T>,
): Promise<{ operation: string; outcome: Outcome<T> | null }> {
  const inserted = await client.query(
    prepared(`INSERT INTO ${table} (key, operation, outcome) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING`, [
      key,
      operation,
      JSON.stringify(outcome),
    ]),
  );
  if (inserted.rowCount === 1) return { operation, outcome };
  return recordedOutcome<T>(client, table, key);
}

/** The operation and outcome recorded under `key`, which the caller knows to be taken. */
async function recordedOutcome<T>(
  client: pg.PoolClient,
  table: string,
  key: string,
): Promise<{ operation: string; outcome: Outcome<T> | null }> {
  const { rows } = await client.query<{ operation: string; outcome: Outcome<T> | null }>(
    prepared(`SELECT operation, outcome FROM ${table} WHERE key = $1`, [key]),
  );
  const row = rows[0];
  if (!row) throw new Error(`idempotency key ${key} vanished`);
  return row;
}

/**
 * Marks a step's key as voided if the step never ran, inside the compensation's transaction: a late
 * attempt of the step (an old retry still in flight) then finds the key taken and does nothing.
 * Returns true when the key was voided, false when the step had already claimed it.
 */
export async function voidIfAbsent(tx: Tx, schema: string, key: string, operation: string): Promise<boolean> {
  const res = await tx.query(
    prepared(
      `INSERT INTO ${tx.escapeIdentifier(schema)}.idempotency_keys (key, operation, outcome)
     VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING RETURNING key`,
      [key, operation, JSON.stringify({ status: 'voided' })],
    ),
  );
  return res.rowCount === 1;
}
