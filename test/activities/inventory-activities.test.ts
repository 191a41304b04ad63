import { outboxEventId } from '../../src/outbox/event-id';
import { createInventoryActivities } from '../../src/services/inventory/inventory-activities';
import { FailureType } from '../../src/shared/saga-contract';
import type { DbHarness } from '../support/db-harness';
import { failureOf, openDb, outboxEvents, putStock, runActivity, stockOf } from '../support/db-harness';
import { uniqueName } from '../support/stack';

describe('inventory activities', () => {
  let db: DbHarness;
  let acts: ReturnType<typeof createInventoryActivities>;
  beforeAll(async () => {
    db = await openDb(10);
    acts = createInventoryActivities({ db: db.pools.inventory, outbox: db.outbox });
  });
  afterAll(() => db.close());

  it('reserveStock takes every line once; a second run changes nothing', async () => {
    const [a, b] = [uniqueName('sku'), uniqueName('sku')];
    await putStock(db, a, 10);
    await putStock(db, b, 3);
    const key = uniqueName('k');
    const orderId = uniqueName('ord');
    const input = {
      idempotencyKey: key,
      orderId,
      items: [
        { sku: a, quantity: 2 },
        { sku: b, quantity: 3 },
        { sku: a, quantity: 1 },
      ],
    };
    const first = await runActivity(acts.reserveStock, input);
    const second = await runActivity(acts.reserveStock, input);
    expect(second).toEqual(first);
    expect(first.lines).toEqual(
      [
        { sku: a, quantity: 3 },
        { sku: b, quantity: 3 },
      ].sort((x, y) => (x.sku < y.sku ? -1 : 1)),
    );
    expect(await stockOf(db, a)).toBe(7);
    expect(await stockOf(db, b)).toBe(0);
    const events = await outboxEvents(db, 'inventory', orderId);
    expect(events).toEqual([
      {
        topic: `${db.outbox.topicPrefix}.inventory.stock-reserved`,
        aggregateType: 'order',
        aggregateId: orderId,
        type: 'inventory.stock-reserved',
        event: {
          eventId: outboxEventId(key, 'inventory.stock-reserved'),
          eventType: 'inventory.stock-reserved',
          eventVersion: 1,
          occurredAt: expect.any(Number) as number,
          orderId,
          lines: first.lines,
        },
      },
    ]);
  });

  it('reserveStock reserves nothing when one line is short, and says OutOfStock again on a repeat', async () => {
    const [a, b] = [uniqueName('sku'), uniqueName('sku')];
    await putStock(db, a, 10);
    await putStock(db, b, 1);
    const input = {
      idempotencyKey: uniqueName('k'),
      orderId: uniqueName('ord'),
      items: [
        { sku: a, quantity: 4 },
        { sku: b, quantity: 2 },
      ],
    };
    const first = await failureOf(runActivity(acts.reserveStock, input));
    expect(first).toMatchObject({ type: FailureType.OutOfStock, nonRetryable: true });
    // Even with stock back, the same request gets the same answer: the key decided.
    await putStock(db, b, 5);
    expect(await failureOf(runActivity(acts.reserveStock, input))).toEqual(first);
    expect(await stockOf(db, a)).toBe(10);
    expect(await stockOf(db, b)).toBe(5);
    // A refusal changed nothing, so it announces nothing either.
    expect(await outboxEvents(db, 'inventory', input.orderId)).toEqual([]);
  });

  it('an unknown SKU is OutOfStock', async () => {
    const input = {
      idempotencyKey: uniqueName('k'),
      orderId: 'o3',
      items: [{ sku: uniqueName('nosku'), quantity: 1 }],
    };
    expect(await failureOf(runActivity(acts.reserveStock, input))).toMatchObject({ type: FailureType.OutOfStock });
  });

  it('releaseStock puts the reservation back once; a second run changes nothing', async () => {
    const sku = uniqueName('sku');
    await putStock(db, sku, 5);
    const reservationKey = uniqueName('k');
    const orderId = uniqueName('ord');
    await runActivity(acts.reserveStock, {
      idempotencyKey: reservationKey,
      orderId,
      items: [{ sku, quantity: 4 }],
    });
    expect(await stockOf(db, sku)).toBe(1);
    const release = { idempotencyKey: uniqueName('k'), reservationKey, orderId };
    const first = await runActivity(acts.releaseStock, release);
    const second = await runActivity(acts.releaseStock, release);
    // Another release key for the same reservation must not add stock again either.
    const other = await runActivity(acts.releaseStock, { ...release, idempotencyKey: uniqueName('k') });
    expect(first).toEqual({ reservationKey, released: [{ sku, quantity: 4 }], voided: false });
    expect(second).toEqual(first);
    expect(other).toEqual({ reservationKey, released: [], voided: false });
    expect(await stockOf(db, sku)).toBe(5);
    const events = await outboxEvents(db, 'inventory', orderId);
    expect(events.map((e) => e.type)).toEqual(['inventory.stock-reserved', 'inventory.stock-released']);
    expect(events[1]).toMatchObject({
      topic: `${db.outbox.topicPrefix}.inventory.stock-released`,
      event: {
        eventId: outboxEventId(release.idempotencyKey, 'inventory.stock-released'),
        eventType: 'inventory.stock-released',
        eventVersion: 1,
        orderId,
        lines: [{ sku, quantity: 4 }],
      },
    });
  });

  it('releaseStock before the reservation voids it: a late reserveStock takes nothing', async () => {
    const sku = uniqueName('sku');
    await putStock(db, sku, 5);
    const reservationKey = uniqueName('k');
    const orderId = uniqueName('ord');
    const released = await runActivity(acts.releaseStock, {
      idempotencyKey: uniqueName('k'),
      reservationKey,
      orderId,
    });
    expect(released).toEqual({ reservationKey, released: [], voided: true });
    const late = await failureOf(
      runActivity(acts.reserveStock, { idempotencyKey: reservationKey, orderId, items: [{ sku, quantity: 2 }] }),
    );
    expect(late).toMatchObject({ type: FailureType.StepVoided, nonRetryable: true });
    expect(await stockOf(db, sku)).toBe(5);
    // Nothing was reserved or released: no events.
    expect(await outboxEvents(db, 'inventory', orderId)).toEqual([]);
  });

  it('never goes below zero when many reservations race for one SKU', async () => {
    const sku = uniqueName('sku');
    await putStock(db, sku, 7);
    const attempts = Array.from({ length: 30 }, (_, i) =>
      runActivity(acts.reserveStock, {
        idempotencyKey: uniqueName(`k${i}`),
        orderId: `o${i}`,
        items: [{ sku, quantity: 1 }],
      }),
    );
    const results = await Promise.allSettled(attempts);
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const rejected = results.filter(
      (r) => r.status === 'rejected' && (r.reason as { type?: string }).type === FailureType.OutOfStock,
    ).length;
    expect({ ok, rejected }).toEqual({ ok: 7, rejected: 23 });
    expect(await stockOf(db, sku)).toBe(0);
  });

  it('the same reservation delivered twice at once takes stock once', async () => {
    const sku = uniqueName('sku');
    await putStock(db, sku, 10);
    const input = { idempotencyKey: uniqueName('k'), orderId: uniqueName('ord'), items: [{ sku, quantity: 3 }] };
    const [x, y] = await Promise.all([runActivity(acts.reserveStock, input), runActivity(acts.reserveStock, input)]);
    expect(x).toEqual(y);
    expect(await stockOf(db, sku)).toBe(7);
    expect(await outboxEvents(db, 'inventory', input.orderId)).toHaveLength(1);
  });
});
