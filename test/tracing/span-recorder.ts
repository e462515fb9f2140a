import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

/** A finished span, as the tests compare them across processes. */
export interface SpanRecord {
  process: string;
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
  failed: boolean;
}

/**
 * What an application does to trace (an OpenTelemetry SDK registered), with
 * the in-memory exporter of @opentelemetry/sdk-trace-base: every finished span
 * stays in memory for `records`.
 */
export function startTracing(): InMemorySpanExporter {
  const exporter = new InMemorySpanExporter();
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  return exporter;
}

export function records(exporter: InMemorySpanExporter, processName: string): SpanRecord[] {
  return exporter.getFinishedSpans().map((s) => ({
    process: processName,
    name: s.name,
    kind: s.kind,
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    ...(s.parentSpanContext ? { parentSpanId: s.parentSpanContext.spanId } : {}),
    attributes: { ...s.attributes },
    failed: s.status.code === 2,
  }));
}
