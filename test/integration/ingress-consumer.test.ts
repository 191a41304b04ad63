import type { Client } from '@temporalio/client';

import type { BadRecord } from '../../src/cli/order-events';
import { BAD_RECORD_KINDS, badRecord, cancelledEvent, placedEvent } from '../../src/cli/order-events';
import { EventCodec } from '../../src/events/codec';
import { deadLetterTopic } from '../../src/events/topics';
import type { Ingress } from '../../src/ingress/app';
import { DLQ_HEADERS, readDeadLetter } from '../../src/ingress/dead-letter';
import type { SagaStartMemo } from '../../src/ingress/saga-gateway';
import { RegistryClient } from '../../src/kafka/registry-client';
import { orderWorkflowId } from '../../src/shared/saga-contract';
import type { IngressScope } from '../support/ingress-harness';
import {
  db,
  ledgerOutcomes,
  newScope,
  produce,
  readAll,
  startScopedIngress,
  startStubSagaWorker,
  stubRuns,
  temporalClient,
  temporalRuns,
} from '../support/ingress-harness';
import { endpoints } from '../support/stack';
import { waitUntil } from '../support/wait-until';

jest.setTimeout(300_000);

let temporal: { client: Client; close: () => Promise<void> };
beforeAll(async () => {
  temporal = await temporalClient();
});
afterAll(async () => {
  await temporal.close();
  await db.end();
});

async function withIngress<T>(scope: IngressScope, fn: (ingress: Ingress) => Promise<T>, env = {}): Promise<T> {
  const worker = await startStubSagaWorker(scope);
  const ingress = await startScopedIngress(scope, env);
  try {
    return await fn(ingress);
  } finally {
    await ingress.stop();
    await worker.stop();
  }
}

describe('ingress consumer (stub saga on a private task queue)', () => {
  it('turns N Avro events, v1 and v2, into N sagas; v1 orders are not loyalty members', async () => {
    const scope = await newScope('it_ingress_n', 3);
    const events = Array.from({ length: 30 }, (_, i) =>
      placedEvent({ version: i % 2 === 0 ? 1 : 2, isLoyaltyMember: true }),
    );
    await withIngress(scope, async (ingress) => {
      await produce(
        scope.placed,
        events.map((event) => ({ event })),
      );
      const rows = await waitUntil(
        '30 stub sagas',
        () => stubRuns(scope),
        (r) => r.length >= 30,
      );
      expect(rows.every((r) => r.runs === 1 && r.outcomes[0] === 'CHARGED')).toBe(true);
      expect(new Set(rows.map((r) => r.orderId))).toEqual(new Set(events.map((e) => e.orderId)));
      expect(ingress.consumer.stats.handled.STARTED).toBe(30);
    });
    expect(await ledgerOutcomes(scope)).toEqual({ STARTED: 30 });
    for (const e of events.slice(0, 4)) {
      const memo = (await temporal.client.workflow.getHandle(orderWorkflowId(e.orderId)).describe()).memo as
        SagaStartMemo | undefined;
      expect(memo).toEqual({
        eventId: e.eventId,
        sourceVersion: e.eventVersion,
        isLoyaltyMember: e.eventVersion === 2,
      });
    }
  });

  it("carries the ingress span into the saga's headers only when Temporal tracing is on", async () => {
    // The OpenTelemetry client interceptor writes this header; untraced workers would never read it.
    const headerKeysOfSaga = async (orderId: string) => {
      const history = await temporal.client.workflow.getHandle(orderWorkflowId(orderId)).fetchHistory();
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      return Object.keys(started?.header?.fields ?? {});
    };
    for (const tracing of ['on', 'off'] as const) {
      const scope = await newScope(`it_ingress_trace_${tracing}`);
      const event = placedEvent({ version: 2 });
      await withIngress(
        scope,
        async () => {
          await produce(scope.placed, [{ event }]);
          await waitUntil(
            'the stub saga',
            () => stubRuns(scope),
            (r) => r.length >= 1,
          );
        },
        { KTS_TEMPORAL_TRACING: tracing },
      );
      const keys = await headerKeysOfSaga(event.orderId);
      if (tracing === 'on') expect(keys).toContain('_tracer-data');
      else expect(keys).not.toContain('_tracer-data');
    }
  });

  it('never starts a second saga for duplicates: same events three times, or a new eventId for the same order', async () => {
    const scope = await newScope('it_ingress_dup', 2);
    const events = Array.from({ length: 20 }, () => placedEvent({ version: 2 }));
    const sameOrderNewEvent = events.slice(0, 5).map((e) => ({ ...e, eventId: crypto.randomUUID() }));
    await withIngress(scope, async () => {
      for (let round = 0; round < 3; round += 1)
        await produce(
          scope.placed,
          events.map((event) => ({ event })),
        );
      await produce(
        scope.placed,
        sameOrderNewEvent.map((event) => ({ event })),
      );
      await waitUntil(
        'every record handled',
        () => ledgerOutcomes(scope),
        (o) => (o.STARTED ?? 0) === 20 && (o.DUPLICATE_ORDER ?? 0) === 5,
      );
      // Sagas run for a second after start; wait for all of them to write their charge row.
      await waitUntil(
        '20 charges',
        () => stubRuns(scope),
        (r) => r.length === 20,
      );
    });
    const runs = await stubRuns(scope);
    expect(runs.filter((r) => r.runs !== 1)).toEqual([]);
    const wf = await temporalRuns(temporal.client, scope);
    expect(wf.size).toBe(20);
    expect([...wf.values()].every((n) => n === 1)).toBe(true);
    // Duplicate eventIds leave no second ledger row; the new eventId for a started order is recorded.
    expect(await ledgerOutcomes(scope)).toEqual({ STARTED: 20, DUPLICATE_ORDER: 5 });
  });

  it('dead-letters every kind of poison with its reason and origin, and handles the good records around them', async () => {
    const scope = await newScope('it_ingress_dlq', 1);
    const maxPayloadBytes = 4096;
    const codec = new EventCodec(new RegistryClient(endpoints.registryUrl));
    const bad: BadRecord[] = [];
    for (const kind of BAD_RECORD_KINDS) bad.push(await badRecord(kind, codec, scope.placed, maxPayloadBytes));
    for (let i = 0; i < 5; i += 1) bad.push(await badRecord('random-bytes', codec, scope.placed, maxPayloadBytes));
    const good = Array.from({ length: bad.length + 1 }, () => placedEvent({ version: 1 }));
    // good, bad, good, bad, ... good on one partition: poison must not block what follows it.
    const records = good.flatMap((event, i) => {
      const b = bad[i];
      return b ? [{ event }, { key: b.key, value: b.value }] : [{ event }];
    });
    await produce(scope.placed, records);
    await withIngress(
      scope,
      async (ingress) => {
        await waitUntil(
          'all good orders started',
          () => stubRuns(scope),
          (r) => r.length === good.length,
        );
        expect(ingress.consumer.stats.handled.DEAD_LETTERED).toBe(bad.length);
        expect(ingress.consumer.stats.transientFailures).toBe(0);
      },
      { KTS_INGRESS_MAX_PAYLOAD_BYTES: String(maxPayloadBytes) },
    );
    const dlq = (await readAll(deadLetterTopic(scope.placed))).map((r) => ({
      view: readDeadLetter(r.partition, r.message),
      message: r.message,
    }));
    expect(dlq).toHaveLength(bad.length);
    // Records alternate good/bad, so the i-th bad record sits at offset 2i+1 of partition 0.
    bad.forEach((b, i) => {
      const letter = dlq.find((d) => d.view.originalOffset === String(2 * i + 1));
      expect({ kind: b.kind, ok: b.expectedReasons.includes(letter?.view.reason ?? '') }).toEqual({
        kind: b.kind,
        ok: true,
      });
      expect(letter?.view.originalTopic).toBe(scope.placed);
      expect(letter?.view.originalPartition).toBe(0);
      expect(letter?.view.key).toBe(b.key);
      expect(letter?.message.value ?? null).toEqual(b.value === null ? null : b.value);
      expect(Number(letter?.view.originalTimestamp)).toBeGreaterThan(0);
      expect(letter?.message.headers?.[DLQ_HEADERS.errorType]?.toString()).toMatch(
        /^(SizeLimit|WireFormat|Registry|Avro|Validation|Ingress)$/,
      );
    });
    expect(await ledgerOutcomes(scope)).toEqual({ STARTED: good.length });
  });

  it('signals cancels, including one that overtakes its order (different topics)', async () => {
    const scope = await newScope('it_ingress_cancel', 1);
    const [a, b, c] = [placedEvent({ version: 2 }), placedEvent({ version: 2 }), placedEvent({ version: 1 })];
    await withIngress(scope, async () => {
      // b's cancel is produced (and consumed) before b itself.
      await produce(scope.cancelled, [{ event: cancelledEvent(b.orderId, b.userId) }]);
      await waitUntil(
        'pending cancel',
        () => ledgerOutcomes(scope),
        (o) => o.CANCEL_PENDING === 1,
      );
      await produce(scope.placed, [{ event: a }, { event: b }, { event: c }]);
      await waitUntil(
        '3 sagas started',
        () => ledgerOutcomes(scope),
        (o) => o.STARTED === 3,
      );
      await produce(scope.cancelled, [{ event: cancelledEvent(a.orderId, a.userId) }]);
      await waitUntil(
        '3 sagas ended',
        () => stubRuns(scope),
        (r) => r.length === 3,
      );
      // Once c's saga has closed, its cancel is recorded as too late, not dead-lettered.
      await temporal.client.workflow.getHandle(orderWorkflowId(c.orderId)).result();
      await produce(scope.cancelled, [{ event: cancelledEvent(c.orderId, c.userId) }]);
      await waitUntil(
        'cancels handled',
        () => ledgerOutcomes(scope),
        (o) => o.CANCEL_TOO_LATE === 1,
      );
    });
    const outcome = new Map((await stubRuns(scope)).map((r) => [r.orderId, r.outcomes.join(',')]));
    expect([outcome.get(a.orderId), outcome.get(b.orderId), outcome.get(c.orderId)]).toEqual([
      'CANCELLED',
      'CANCELLED',
      'CHARGED',
    ]);
    expect(await ledgerOutcomes(scope)).toEqual({ STARTED: 3, SIGNALLED: 1, CANCEL_PENDING: 1, CANCEL_TOO_LATE: 1 });
  });
});
