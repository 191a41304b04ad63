import { randomUUID } from 'node:crypto';

import type pg from 'pg';

import { createPgPool } from '../../src/config/clients';
import type { EventSource } from '../../src/ingress/ledger';
import { IngressLedger } from '../../src/ingress/ledger';
import { testSettings } from '../support/settings';
import { uniqueName } from '../support/stack';

// The real ledger on the shared PostgreSQL, as the ingress's own role: ids are fresh per test.
const settings = testSettings(['ingress'], uniqueName('it_ledger'));
let pool: pg.Pool;
let ledger: IngressLedger;

beforeAll(() => {
  pool = createPgPool(settings.roles.ingress.pgUrl, settings.postgres, { max: 2, applicationName: 'it-ledger' });
  ledger = new IngressLedger(pool);
});
afterAll(() => pool.end());

const at = (offset: number): EventSource => ({
  topic: `${uniqueName('it_ledger')}.order.placed`,
  partition: 0,
  offset: String(offset),
});

describe('IngressLedger.recordStartedUnlessCancelPending', () => {
  it('with no cancel pending records the saga and its event in one statement, idempotently', async () => {
    const orderId = `o-${randomUUID()}`;
    const entry = { eventId: randomUUID(), eventType: 'order.placed', orderId };
    expect(await ledger.recordStartedUnlessCancelPending(entry, `order-${orderId}`, 'STARTED', at(1))).toBeUndefined();
    expect(await ledger.lookup(entry.eventId, orderId)).toEqual({ eventSeen: true, orderStarted: true });
    // A redelivery changes nothing and still reports no pending cancel.
    expect(await ledger.recordStartedUnlessCancelPending(entry, `order-${orderId}`, 'STARTED', at(1))).toBeUndefined();
    const { rows } = await pool.query<{ n: string }>(
      'SELECT count(*) AS n FROM ingress.processed_events WHERE order_id = $1',
      [orderId],
    );
    expect(Number(rows[0]!.n)).toBe(1);
  });

  it('with a cancel pending writes nothing and returns its reason, so the caller signals first', async () => {
    const orderId = `o-${randomUUID()}`;
    const cancel = { eventId: randomUUID(), eventType: 'order.cancelled', orderId };
    await ledger.recordPendingCancel(cancel, 'customer changed mind', at(2));
    const placed = { eventId: randomUUID(), eventType: 'order.placed', orderId };
    expect(await ledger.recordStartedUnlessCancelPending(placed, `order-${orderId}`, 'STARTED', at(3))).toBe(
      'customer changed mind',
    );
    expect(await ledger.lookup(placed.eventId, orderId)).toEqual({ eventSeen: false, orderStarted: false });
    await ledger.recordStarted(placed, `order-${orderId}`, 'STARTED', at(3));
    expect(await ledger.lookup(placed.eventId, orderId)).toEqual({ eventSeen: true, orderStarted: true });
  });
});

describe('IngressLedger statements', () => {
  it('are prepared once per connection and then only executed', async () => {
    // One connection, so the catalogue query below sees the ledger's own session.
    const single = createPgPool(settings.roles.ingress.pgUrl, settings.postgres, {
      max: 1,
      applicationName: 'it-ledger-1',
    });
    try {
      const own = new IngressLedger(single);
      const orderId = `o-${randomUUID()}`;
      const entry = { eventId: randomUUID(), eventType: 'order.placed', orderId };
      for (let i = 0; i < 3; i++) await own.lookup(entry.eventId, orderId);
      await own.recordStartedUnlessCancelPending(entry, `order-${orderId}`, 'STARTED', at(4));
      await own.recordStartedUnlessCancelPending(entry, `order-${orderId}`, 'STARTED', at(4));
      const { rows } = await single.query<{ statement: string; runs: number }>(
        `SELECT statement, (generic_plans + custom_plans)::int AS runs FROM pg_prepared_statements
         WHERE name LIKE 'kts\\_%'`,
      );
      const runsOf = (fragment: string) => rows.filter((r) => r.statement.includes(fragment)).map((r) => r.runs);
      expect(rows).toHaveLength(2);
      expect(runsOf('EXISTS (SELECT 1 FROM ingress.processed_events')).toEqual([3]);
      expect(runsOf('WITH pending AS')).toEqual([2]);
    } finally {
      await single.end();
    }
  });
});
