import type { Attributes, Context, Span, TextMapGetter } from '@opentelemetry/api';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { BatchSpanProcessor, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';

/** Instrumentation scope of the spans this project creates itself (Temporal's have their own). */
export const TRACER_NAME = 'kafka-temporal-saga';

/** The W3C header that carries trace context on Kafka records, in outbox rows and through Temporal. */
export const TRACEPARENT_HEADER = 'traceparent';

export interface Tracing {
  /** Span processor that also feeds Temporal's workflow span sink (see temporalTracingPlugin). */
  spanProcessor: SpanProcessor;
  resource: Resource;
  shutdown(): Promise<void>;
}

let installed: Tracing | undefined;

/**
 * Installs the process-wide tracer provider once: W3C propagation, async-hooks context, and an OTLP
 * exporter when `otlpEndpoint` (the settings' OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is given. Tests
 * pass an in-memory exporter instead.
 * Calling it again returns the first installation, since OpenTelemetry's globals can be set once.
 */
export function initTracing(service: string, exporter?: SpanExporter, otlpEndpoint?: string): Tracing {
  if (installed) return installed;
  const resource = new Resource({ 'service.name': service });
  let spanProcessor: SpanProcessor;
  if (exporter) spanProcessor = new SimpleSpanProcessor(exporter);
  else if (otlpEndpoint) {
    spanProcessor = new BatchSpanProcessor(new OTLPTraceExporter({ url: otlpEndpoint }));
  } else {
    // No backend configured: keep spans in-process (trace ids still flow into logs and headers).
    spanProcessor = { forceFlush: async () => {}, onStart: () => {}, onEnd: () => {}, shutdown: async () => {} };
  }
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  installed = { spanProcessor, resource, shutdown: () => provider.shutdown() };
  return installed;
}

/**
 * Temporal's OpenTelemetry plugin for clients and workers: it carries the caller's context into the
 * workflow, creates workflow and activity spans, and exports workflow spans through a sink.
 */
export function temporalTracingPlugin(tracing: Tracing): OpenTelemetryPlugin {
  return new OpenTelemetryPlugin({ resource: tracing.resource, spanProcessor: tracing.spanProcessor });
}

// Kafka headers may carry a null value: Debezium places a header for a NULL column (an outbox row
// without tracestate, say), and kafkajs hands it over as null.
type HeaderValue = Buffer | string | null | (Buffer | string | null)[] | undefined;
const kafkaHeaderGetter: TextMapGetter<Record<string, HeaderValue>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    const first = Array.isArray(v) ? v[0] : v;
    return first === undefined || first === null ? undefined : first.toString();
  },
};

/**
 * The trace context a Kafka record (or an HTTP request: same W3C header, same shape) carries in its
 * headers; the root context when it carries none.
 */
export function contextFromKafkaHeaders(headers: Record<string, HeaderValue> | undefined): Context {
  return propagation.extract(ROOT_CONTEXT, headers ?? {}, kafkaHeaderGetter);
}

/** Headers that carry the given (default: active) trace context onto a Kafka record or an outbox row. */
export function traceHeaders(ctx: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier;
}

/** The active traceparent, for outbox rows; undefined outside any span. */
export function currentTraceparent(): string | undefined {
  return traceHeaders()[TRACEPARENT_HEADER];
}

/** The active trace id, for log lines. */
export function currentTraceId(): string | undefined {
  const span = trace.getSpan(context.active());
  return span?.spanContext().traceId;
}

/**
 * Runs `fn` inside a new active span, a child of `parent` (default: the active context), so every
 * call it makes (Temporal client, outbox writer, Kafka producer) carries this span's context. A
 * thrown error marks the span failed and is rethrown.
 */
export async function inSpan<T>(
  name: string,
  options: { kind?: SpanKind; attributes?: Attributes; parent?: Context },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const tracer = trace.getTracer(TRACER_NAME);
  const parent = options.parent ?? context.active();
  return tracer.startActiveSpan(name, { kind: options.kind, attributes: options.attributes }, parent, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * Starts a producer span for one record and returns the headers that carry it, so the consumer's
 * spans join the producer's trace. `end()` once the record is acknowledged.
 */
export function producerSpan(name: string, attributes: Attributes): { headers: Record<string, string>; end(): void } {
  const span = trace.getTracer(TRACER_NAME).startSpan(name, { kind: SpanKind.PRODUCER, attributes });
  return { headers: traceHeaders(trace.setSpan(context.active(), span)), end: () => span.end() };
}
