import type { KafkaMessage } from 'kafkajs';

import { cancelledEvent, placedEvent } from '../../src/cli/order-events';
import { EventCodec } from '../../src/events/codec';
import { backoffDelay } from '../../src/ingress/consumer';
import type { DeadLetterCause, SourceRecord } from '../../src/ingress/dead-letter';
import {
  deadLetterMessage,
  DLQ_HEADERS,
  readDeadLetter,
  REPLAY_HEADERS,
  replayHeaders,
} from '../../src/ingress/dead-letter';
import { IngressHandler } from '../../src/ingress/handler';
import type { IngressLedger, LedgerOutcome } from '../../src/ingress/ledger';
import type { SagaGateway } from '../../src/ingress/saga-gateway';
import type { RegistryClient } from '../../src/kafka/registry-client';

/** In-memory stand-ins with the same contracts as the PostgreSQL ledger and the Temporal gateway. */
function fakes() {
  const schemas: string[] = [];
  const registry = {
    setCompatibility: () => Promise.resolve(),
    register: (_s: string, schema: object) => {
      const text = JSON.stringify(schema);
      if (!schemas.includes(text)) schemas.push(text);
      return Promise.resolve(schemas.indexOf(text) + 1);
    },
    // Every schema counts as provisioned: a lookup answers with the schema's id.
    lookup: (_s: string, schema: object) => {
      const text = JSON.stringify(schema);
      if (!schemas.includes(text)) schemas.push(text);
      const id = schemas.indexOf(text) + 1;
      return Promise.resolve({ id, version: id });
    },
    schemaById: (id: number) => Promise.resolve(schemas[id - 1]!),
  } as unknown as RegistryClient;
  const events = new Map<string, LedgerOutcome>();
  const sagas = new Set<string>();
  const pending = new Map<string, string>();
  const ledger = {
    lookup: (eventId: string, orderId: string) =>
      Promise.resolve({ eventSeen: events.has(eventId), orderStarted: sagas.has(orderId) }),
    record: (e: { eventId: string }, outcome: LedgerOutcome) => {
      if (!events.has(e.eventId)) events.set(e.eventId, outcome);
      return Promise.resolve();
    },
    recordStarted: (e: { eventId: string; orderId: string }, _wf: string, outcome: LedgerOutcome) => {
      sagas.add(e.orderId);
      if (!events.has(e.eventId)) events.set(e.eventId, outcome);
      return Promise.resolve();
    },
    recordPendingCancel: (e: { eventId: string; orderId: string }, reason: string) => {
      if (!pending.has(e.orderId)) pending.set(e.orderId, reason);
      if (!events.has(e.eventId)) events.set(e.eventId, 'CANCEL_PENDING');
      return Promise.resolve();
    },
    recordStartedUnlessCancelPending: (
      e: { eventId: string; orderId: string },
      _wf: string,
      outcome: LedgerOutcome,
    ) => {
      const reason = pending.get(e.orderId);
      if (reason !== undefined) return Promise.resolve(reason);
      sagas.add(e.orderId);
      if (!events.has(e.eventId)) events.set(e.eventId, outcome);
      return Promise.resolve(undefined);
    },
  } as unknown as IngressLedger;
  const running = new Set<string>();
  const starts: string[] = [];
  const signals: string[] = [];
  let temporalDown = false;
  const gateway: SagaGateway = {
    start: (order) => {
      if (temporalDown) return Promise.reject(Object.assign(new Error('unavailable'), { name: 'ServiceError' }));
      const workflowId = `order-${order.orderId}`;
      if (running.has(order.orderId)) return Promise.resolve({ workflowId, outcome: 'ALREADY_STARTED' as const });
      running.add(order.orderId);
      starts.push(order.orderId);
      return Promise.resolve({ workflowId, outcome: 'STARTED' as const });
    },
    cancel: (orderId) => {
      if (!running.has(orderId)) return Promise.resolve('NOT_RUNNING' as const);
      signals.push(orderId);
      return Promise.resolve('SIGNALLED' as const);
    },
  };
  const dead: DeadLetterCause[] = [];
  const handler = new IngressHandler({
    codec: new EventCodec(registry),
    ledger,
    gateway,
    deadLetter: (_s, cause) => {
      dead.push(cause);
      return Promise.resolve();
    },
    topics: { placed: 'p', cancelled: 'c' },
  });
  let offset = 0;
  const codec = new EventCodec(registry);
  const record = async <E extends { eventType: string; eventVersion: number; orderId: string }>(
    topic: 'p' | 'c',
    event: E,
  ) => ({
    topic,
    partition: 0,
    message: {
      key: Buffer.from(event.orderId),
      value: await codec.encode(topic, event),
      headers: {},
      offset: String(offset++),
      timestamp: '1',
    },
  });
  return {
    handler,
    record,
    starts,
    signals,
    dead,
    events,
    running,
    setTemporalDown: (v: boolean) => (temporalDown = v),
  };
}

describe('IngressHandler', () => {
  it('starts one saga per order whatever arrives twice', async () => {
    const f = fakes();
    const a = placedEvent({ version: 1 });
    const r = await f.record('p', a);
    expect((await f.handler.handle(r)).outcome).toBe('STARTED');
    expect((await f.handler.handle(r)).outcome).toBe('DUPLICATE_EVENT');
    const sameOrder = await f.record('p', { ...a, eventId: crypto.randomUUID() });
    expect((await f.handler.handle(sameOrder)).outcome).toBe('DUPLICATE_ORDER');
    expect(f.starts).toEqual([a.orderId]);
  });

  it('treats a saga Temporal already has (crash between start and ledger) as started, once', async () => {
    const f = fakes();
    const a = placedEvent({ version: 2 });
    f.running.add(a.orderId);
    expect((await f.handler.handle(await f.record('p', a))).outcome).toBe('ALREADY_STARTED');
    expect(f.starts).toEqual([]);
  });

  it('lets a transient Temporal failure escape (the consumer retries) and records nothing', async () => {
    const f = fakes();
    const a = placedEvent({ version: 2 });
    const r = await f.record('p', a);
    f.setTemporalDown(true);
    await expect(f.handler.handle(r)).rejects.toMatchObject({ name: 'ServiceError' });
    expect(f.events.size).toBe(0);
    expect(f.dead).toEqual([]);
    f.setTemporalDown(false);
    expect((await f.handler.handle(r)).outcome).toBe('STARTED');
  });

  it('holds a cancel that overtakes its order and applies it at start', async () => {
    const f = fakes();
    const a = placedEvent({ version: 2 });
    expect((await f.handler.handle(await f.record('c', cancelledEvent(a.orderId, a.userId)))).outcome).toBe(
      'CANCEL_PENDING',
    );
    expect((await f.handler.handle(await f.record('p', a))).outcome).toBe('STARTED');
    expect(f.signals).toEqual([a.orderId]);
  });

  it('dead-letters a record whose key is not its orderId', async () => {
    const f = fakes();
    const r = await f.record('p', placedEvent({ version: 2 }));
    r.message.key = Buffer.from('someone-else');
    expect(await f.handler.handle(r)).toEqual({ outcome: 'DEAD_LETTERED', reason: 'KeyMismatch' });
    expect(f.starts).toEqual([]);
  });
});

describe('dead-letter records', () => {
  const source: SourceRecord = {
    topic: 'order.placed',
    partition: 4,
    message: {
      key: Buffer.from('k'),
      value: Buffer.from([1, 2]),
      headers: { traceparent: 'tp' },
      offset: '17',
      timestamp: '99',
    },
  };

  it('carry the original record and say why and where from; replay strips our headers and says where from', () => {
    const msg = deadLetterMessage(
      source,
      { reason: 'WrongMagicByte', errorType: 'WireFormat', message: 'magic 1' },
      'g',
      new Date(0),
    );
    expect(msg.key).toBe(source.message.key);
    expect(msg.value).toBe(source.message.value);
    expect(msg.headers).toMatchObject({
      traceparent: 'tp',
      [DLQ_HEADERS.reason]: 'WrongMagicByte',
      [DLQ_HEADERS.errorType]: 'WireFormat',
      [DLQ_HEADERS.originalTopic]: 'order.placed',
      [DLQ_HEADERS.originalPartition]: '4',
      [DLQ_HEADERS.originalOffset]: '17',
      [DLQ_HEADERS.originalTimestamp]: '99',
      [DLQ_HEADERS.deadLetteredAt]: '1970-01-01T00:00:00.000Z',
    });
    const asRead = { ...msg, offset: '3', timestamp: '5', attributes: 0 } as unknown as KafkaMessage;
    expect(readDeadLetter(0, asRead)).toMatchObject({ reason: 'WrongMagicByte', originalPartition: 4, key: 'k' });
    expect(replayHeaders('order.placed.dlq', 0, asRead)).toEqual({
      traceparent: 'tp',
      [REPLAY_HEADERS.replayedFrom]: 'order.placed.dlq/0/3',
    });
  });
});

describe('backoffDelay', () => {
  it('grows exponentially to the cap and never drops below the initial delay', () => {
    const top = () => 1;
    expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, 100, 1000, top))).toEqual([100, 200, 400, 800, 1000]);
    expect(backoffDelay(5, 100, 1000, () => 0)).toBe(100);
  });
});
