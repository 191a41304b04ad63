import { Writable } from 'node:stream';

import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';

import { placedEvent } from '../../src/cli/order-events';
import { EventCodec } from '../../src/events/codec';
import { IngressHandler } from '../../src/ingress/handler';
import type { IngressLedger } from '../../src/ingress/ledger';
import type { SagaGateway } from '../../src/ingress/saga-gateway';
import type { RegistryClient } from '../../src/kafka/registry-client';
import { createLogger, withCorrelation } from '../../src/observability/logger';
import { createMetrics, serveMetrics } from '../../src/observability/metrics';
import {
  contextFromKafkaHeaders,
  currentTraceId,
  initTracing,
  traceHeaders,
  TRACEPARENT_HEADER,
} from '../../src/observability/tracing';

/** A stream that keeps each JSON line the logger writes. */
function lineSink() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { lines, sink };
}

// Once per process (OpenTelemetry's globals can be set once): every describe below shares it.
const exporter = new InMemorySpanExporter();
initTracing('unit-test', exporter);

describe('tracing', () => {
  it('continues the trace a Kafka record carries and hands it on in W3C form', () => {
    const incoming = { [TRACEPARENT_HEADER]: Buffer.from('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01') };
    const parent = contextFromKafkaHeaders(incoming);
    const span = trace.getTracer('t').startSpan('handle order.placed', undefined, parent);
    const outgoing = traceHeaders(trace.setSpan(parent, span));
    span.end();
    expect(span.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(outgoing[TRACEPARENT_HEADER]).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(outgoing[TRACEPARENT_HEADER]).not.toContain('b7ad6b7169203331');
    expect(exporter.getFinishedSpans().map((s) => s.name)).toContain('handle order.placed');
  });

  it('ignores null header values, as Debezium sends for a NULL outbox column', () => {
    const headers = {
      [TRACEPARENT_HEADER]: Buffer.from('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'),
      tracestate: null,
    };
    const ctx = contextFromKafkaHeaders(headers);
    expect(trace.getSpanContext(ctx)?.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(traceHeaders(contextFromKafkaHeaders({ [TRACEPARENT_HEADER]: null }))).toEqual({});
  });

  it('starts a new trace for a record without trace headers', () => {
    expect(traceHeaders(contextFromKafkaHeaders({}))).toEqual({});
    expect(currentTraceId()).toBeUndefined();
  });
});

describe('metrics', () => {
  it('serves what was recorded in the Prometheus text format', async () => {
    const m = createMetrics('unit-test');
    m.eventsConsumed.inc({ topic: 'order.placed', event_type: 'order.placed' }, 3);
    m.consumerLag.set({ group: 'g', topic: 'order.placed', partition: '2' }, 7);
    const server = await serveMetrics(m.registry, 0);
    try {
      const body = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      expect(body).toContain(
        'kts_events_consumed_total{topic="order.placed",event_type="order.placed",service="unit-test"} 3',
      );
      expect(body).toContain('kts_consumer_lag{group="g",topic="order.placed",partition="2",service="unit-test"} 7');
      expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});

describe('logger', () => {
  it('writes JSON lines carrying the correlation fields it was given', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = withCorrelation(createLogger('unit-test', sink), {
      orderId: 'o-1',
      eventId: 'e-1',
      traceId: undefined,
    });
    log.info({ workflowId: 'order-o-1' }, 'saga started');
    const entry = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    expect(entry).toMatchObject({
      service: 'unit-test',
      orderId: 'o-1',
      eventId: 'e-1',
      workflowId: 'order-o-1',
      level: 'info',
      msg: 'saga started',
    });
    expect(entry).not.toHaveProperty('traceId');
  });
});

describe('ingress handling of one record', () => {
  /** A registry that keeps schemas in memory, so the real codec encodes and decodes. */
  function memoryRegistry(): RegistryClient {
    const schemas: string[] = [];
    return {
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
  }

  it('continues the producer trace and logs orderId, eventId, workflowId and traceId', async () => {
    const { lines, sink } = lineSink();
    const codec = new EventCodec(memoryRegistry());
    const ledger = {
      lookup: () => Promise.resolve({ eventSeen: false, orderStarted: false }),
      recordStartedUnlessCancelPending: () => Promise.resolve(undefined),
      recordStarted: () => Promise.resolve(),
    } as unknown as IngressLedger;
    let traceAtStart: string | undefined;
    const gateway: SagaGateway = {
      start: (order) => {
        // What the Temporal client's interceptor would put into the workflow's headers.
        traceAtStart = currentTraceId();
        return Promise.resolve({ workflowId: `order-${order.orderId}`, outcome: 'STARTED' as const });
      },
      cancel: () => Promise.resolve('NOT_RUNNING' as const),
    };
    const handler = new IngressHandler({
      codec,
      ledger,
      gateway,
      deadLetter: () => Promise.reject(new Error('nothing here is poison')),
      topics: { placed: 'unit.order.placed', cancelled: 'unit.order.cancelled' },
      log: createLogger('kts-ingress', sink),
    });
    const event = placedEvent({ version: 2 });
    const producerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const result = await handler.handle({
      topic: 'unit.order.placed',
      partition: 3,
      message: {
        key: Buffer.from(event.orderId),
        value: await codec.encode('unit.order.placed', event),
        headers: { [TRACEPARENT_HEADER]: Buffer.from(`00-${producerTrace}-00f067aa0ba902b7-01`) },
        offset: '42',
        timestamp: '1',
      },
    });

    expect(result.outcome).toBe('STARTED');
    expect(traceAtStart).toBe(producerTrace);
    const handled = lines.find((l) => l.msg === 'record handled');
    expect(handled).toMatchObject({
      service: 'kts-ingress',
      orderId: event.orderId,
      eventId: event.eventId,
      workflowId: `order-${event.orderId}`,
      traceId: producerTrace,
      outcome: 'STARTED',
      offset: '42',
    });
    const span = exporter.getFinishedSpans().find((s) => s.name === 'ingress order.placed');
    expect(span?.spanContext().traceId).toBe(producerTrace);
    expect(span?.parentSpanId).toBe('00f067aa0ba902b7');
    expect(span?.attributes).toMatchObject({ orderId: event.orderId, eventId: event.eventId, partition: 3 });
  });
});
