import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';

import { BusinessRejection, runIdempotent } from '../../src/db/idempotent';
import { FailureType } from '../../src/shared/saga-contract';

/**
 * A pool whose one client records each statement's first words and answers from a script: the claim
 * and the refusal insert report `claimed`/`refusalInserted` rows, the outcome read returns `prior`.
 */
function scriptedPool(script: { claimed?: number; refusalInserted?: number; prior?: object } = {}) {
  const sent: string[] = [];
  const client = {
    escapeIdentifier: (s: string) => `"${s}"`,
    query: (q: string | pg.QueryConfig) => {
      const text = (typeof q === 'string' ? q : q.text).replace(/\s+/g, ' ').trim();
      sent.push(text);
      if (text.startsWith('INSERT INTO "orders".idempotency_keys (key, operation) VALUES')) {
        return Promise.resolve({ rowCount: script.claimed ?? 1, rows: [] });
      }
      if (text.startsWith('INSERT INTO "orders".idempotency_keys (key, operation, outcome)')) {
        return Promise.resolve({ rowCount: script.refusalInserted ?? 1, rows: [] });
      }
      if (text.startsWith('SELECT operation, outcome')) {
        return Promise.resolve({ rowCount: 1, rows: [{ operation: 'createOrder', outcome: script.prior }] });
      }
      return Promise.resolve({ rowCount: 1, rows: [] });
    },
    release: () => undefined,
  };
  const pool = { connect: () => Promise.resolve(client) } as unknown as pg.Pool;
  const firstWords = () => sent.map((t) => t.split(' ').slice(0, 3).join(' '));
  return { pool, firstWords };
}

describe('runIdempotent', () => {
  it('runs a step in one transaction without a savepoint: claim, work, outcome, commit', async () => {
    const { pool, firstWords } = scriptedPool();
    const value = await runIdempotent(pool, 'orders', 'k1', 'createOrder', async (tx) => {
      await tx.query('UPDATE orders.orders SET status = $1', ['X']);
      return 'done';
    });
    expect(value).toBe('done');
    expect(firstWords()).toEqual([
      'BEGIN',
      'INSERT INTO "orders".idempotency_keys',
      'UPDATE orders.orders SET',
      'UPDATE "orders".idempotency_keys SET',
      'COMMIT',
      // replay() returned the value: nothing after the commit.
    ]);
  });

  it('rolls a refusal that keeps no writes back whole and records it in one statement of its own', async () => {
    const { pool, firstWords } = scriptedPool();
    const refused = runIdempotent(pool, 'orders', 'k2', 'createOrder', async (tx) => {
      await tx.query('INSERT INTO orders.orders (order_id) VALUES ($1)', ['o']);
      throw new BusinessRejection(FailureType.InvalidOrder, 'invalid order: items: empty');
    });
    await expect(refused).rejects.toMatchObject({ type: FailureType.InvalidOrder, nonRetryable: true });
    await expect(refused).rejects.toBeInstanceOf(ApplicationFailure);
    expect(firstWords().slice(0, 5)).toEqual([
      'BEGIN',
      'INSERT INTO "orders".idempotency_keys',
      'INSERT INTO orders.orders',
      'ROLLBACK',
      'INSERT INTO "orders".idempotency_keys',
    ]);
    expect(firstWords()).not.toContain('COMMIT');
  });

  it('keeps the writes of a refusal that asks to, in the same transaction as its outcome', async () => {
    const { pool, firstWords } = scriptedPool();
    const refused = runIdempotent(pool, 'orders', 'k3', 'chargePayment', () => {
      throw new BusinessRejection(FailureType.PaymentDeclined, 'card declined', { keepWrites: true });
    });
    await expect(refused).rejects.toMatchObject({ type: FailureType.PaymentDeclined });
    expect(firstWords().slice(0, 4)).toEqual([
      'BEGIN',
      'INSERT INTO "orders".idempotency_keys',
      'UPDATE "orders".idempotency_keys SET',
      'COMMIT',
    ]);
  });

  it("answers with the outcome that got there first when the refusal's insert finds the key taken", async () => {
    const { pool, firstWords } = scriptedPool({ refusalInserted: 0, prior: { status: 'done', value: 'theirs' } });
    const value = await runIdempotent(pool, 'orders', 'k4', 'createOrder', () => {
      throw new BusinessRejection(FailureType.InvalidOrder, 'mine refused');
    });
    expect(value).toBe('theirs');
    expect(firstWords().at(-1)).toBe('SELECT operation, outcome');
  });
});
