import type { Context, TextMapGetter } from '@opentelemetry/api';
import { ROOT_CONTEXT, context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { BatchSpanProcessor, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';
import { z } from 'zod';

/** The W3C header that carries trace context on Kafka records, in outbox rows and through Temporal. */
export const TRACEPARENT_HEADER = 'traceparent';

const tracingEnv = z.object({
  /** OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces; unset = spans stay in-process. */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url().optional(),
});

export interface Tracing {
  /** Span processor that also feeds Temporal's workflow span sink (see temporalTracingPlugin). */
  spanProcessor: SpanProcessor;
  resource: Resource;
  shutdown(): Promise<void>;
}

let installed: Tracing | undefined;

/**
 * Installs the process-wide tracer provider once: W3C propagation, async-hooks context, and an OTLP
 * exporter when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set. Tests pass an in-memory exporter instead.
 * Calling it again returns the first installation, since OpenTelemetry's globals can be set once.
 */
export function initTracing(service: string, exporter?: SpanExporter): Tracing {
  if (installed) return installed;
  const env = tracingEnv.parse(process.env);
  const resource = new Resource({ 'service.name': service });
  let spanProcessor: SpanProcessor;
  if (exporter) spanProcessor = new SimpleSpanProcessor(exporter);
  else if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
    spanProcessor = new BatchSpanProcessor(new OTLPTraceExporter({ url: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT }));
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

type HeaderValue = Buffer | string | (Buffer | string)[] | undefined;
const kafkaHeaderGetter: TextMapGetter<Record<string, HeaderValue>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    const first = Array.isArray(v) ? v[0] : v;
    return first === undefined ? undefined : first.toString();
  },
};

/** The trace context a Kafka record carries in its headers (root context when it carries none). */
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
