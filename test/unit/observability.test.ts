import { Writable } from 'node:stream';

import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';

import { createLogger, withCorrelation } from '../../src/observability/logger';
import { createMetrics, serveMetrics } from '../../src/observability/metrics';
import {
  TRACEPARENT_HEADER,
  contextFromKafkaHeaders,
  currentTraceId,
  initTracing,
  traceHeaders,
} from '../../src/observability/tracing';

describe('tracing', () => {
  const exporter = new InMemorySpanExporter();
  initTracing('unit-test', exporter);

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
