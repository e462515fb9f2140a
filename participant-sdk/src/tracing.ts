import type { EventEmitter } from 'node:events';
import type * as OtelApi from '@opentelemetry/api';

/**
 * OpenTelemetry spans for twopc's steps, on `@opentelemetry/api` alone (an
 * optional peer dependency): without it, or without an SDK registered by the
 * application, every call here does nothing but run the work. The trace
 * context travels as a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`),
 * formatted and parsed here so that it does not depend on which propagator
 * the application registered.
 */

/** What a span says about its step: transaction id, GID, participant, vote, outcome. */
export type TraceAttributes = Record<string, string | number | boolean | undefined>;

export interface SpanOptions {
  /** `client` for a call to another process, `server` for the answer to one; default internal. */
  kind?: 'client' | 'server';
  /** The parent, when it came from another process (a `traceparent`); default: the active span. */
  parent?: string;
  /** The instrumentation scope: `twopc` (the coordinator) or `@twopc/participant-sdk`. */
  scope?: string;
}

/** The attribute names twopc's spans use. */
export const TRACE_ATTRIBUTES = {
  txId: 'twopc.transaction.id',
  gid: 'twopc.branch.gid',
  branchId: 'twopc.branch.id',
  participant: 'twopc.participant',
  vote: 'twopc.vote',
  outcome: 'twopc.outcome',
  source: 'twopc.decision.source',
} as const;

export const TRACEPARENT_HEADER = 'traceparent';
/** The instrumentation scope of the SDK's spans (the coordinator's are `twopc`). */
export const SDK_TRACE_SCOPE = '@twopc/participant-sdk';
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

let api: { otel: typeof OtelApi; noSdk: OtelApi.TracerProvider } | null | undefined;

/**
 * `@opentelemetry/api` when the application has it (looked up once) and has
 * registered an SDK: the API alone is common (prom-client depends on it), and
 * its no-op spans would still cost every step a span's allocations and
 * context switches, so without an SDK nothing here touches it.
 */
function otel(): typeof OtelApi | undefined {
  if (api === undefined) {
    try {
      const otel = require('@opentelemetry/api') as typeof OtelApi;
      // What the API's global provider delegates to while no SDK is registered.
      api = { otel, noSdk: new otel.ProxyTracerProvider().getDelegate() };
    } catch {
      api = null;
    }
  }
  if (!api) return undefined;
  const provider = api.otel.trace.getTracerProvider();
  return provider instanceof api.otel.ProxyTracerProvider && provider.getDelegate() === api.noSdk ? undefined : api.otel;
}

/** True when spans are recorded: the API is there and an SDK is registered. */
export function tracingActive(): boolean {
  return otel() !== undefined;
}

function clean(attributes: TraceAttributes): OtelApi.Attributes {
  const out: OtelApi.Attributes = {};
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined) out[k] = v;
  return out;
}

/** The context a `traceparent` names as the parent (remote), or the active one if it names none. */
function parentContext(o: typeof OtelApi, traceparent: string | undefined): OtelApi.Context {
  const m = traceparent ? TRACEPARENT.exec(traceparent.trim()) : null;
  if (!m) return o.context.active();
  return o.trace.setSpanContext(o.context.active(), { traceId: m[1], spanId: m[2], traceFlags: parseInt(m[3], 16), isRemote: true });
}

/**
 * Runs `work` as a span (a child of `options.parent`, or of the active span),
 * active while it runs; the span ends with work's outcome (an error marks it
 * failed). `annotate` adds attributes learned on the way (a vote, an outcome).
 */
export function inSpan<T>(name: string, attributes: TraceAttributes, work: (annotate: (more: TraceAttributes) => void) => Promise<T>, options: SpanOptions = {}): Promise<T> {
  const o = otel();
  if (!o) return work(() => undefined);
  const kind = options.kind === 'client' ? o.SpanKind.CLIENT : options.kind === 'server' ? o.SpanKind.SERVER : o.SpanKind.INTERNAL;
  const tracer = o.trace.getTracer(options.scope ?? 'twopc');
  return tracer.startActiveSpan(name, { kind, attributes: clean(attributes) }, parentContext(o, options.parent), async (span) => {
    try {
      return await work((more) => span.setAttributes(clean(more)));
    } catch (e) {
      span.recordException(e instanceof Error ? e : String(e));
      span.setStatus({ code: o.SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
      throw e;
    } finally {
      span.end();
    }
  });
}

/** The active span's `traceparent`, to send along with a call; undefined when nothing is traced. */
export function currentTraceparent(): string | undefined {
  const o = otel();
  const ctx = o?.trace.getSpan(o.context.active())?.spanContext();
  if (!o || !ctx || !o.trace.isSpanContextValid(ctx)) return undefined;
  return `00-${ctx.traceId}-${ctx.spanId}-${ctx.traceFlags.toString(16).padStart(2, '0')}`;
}

/** `headers` plus the active span's `traceparent`, if any. */
export function withTraceparent(headers: Record<string, string>): Record<string, string> {
  const traceparent = currentTraceparent();
  return traceparent ? { ...headers, [TRACEPARENT_HEADER]: traceparent } : headers;
}

/**
 * Runs `fn` with the span a `traceparent` names as the active parent (an
 * incoming request's), so that the spans it starts join the caller's trace.
 * `emitters` (the request and response) call their listeners in that context
 * too: a body read through their events would otherwise lose it.
 */
export function withRemoteParent<T>(traceparent: string | undefined, fn: () => T, emitters: EventEmitter[] = []): T {
  // The header first: most requests carry none, and then nothing else is looked at.
  if (!traceparent) return fn();
  const o = otel();
  if (!o || !TRACEPARENT.test(traceparent.trim())) return fn();
  const ctx = parentContext(o, traceparent);
  for (const emitter of emitters) o.context.bind(ctx, emitter);
  return o.context.with(ctx, fn);
}

/**
 * A call's path with a `traceparent` (default: the active span's) added to its query,
 * and the same `traceparent` as a header. The coordinator signs the path
 * with its query, so the participant can trust the query's copy (the SDK
 * parents its spans on it); the header is the standard one, for a
 * participant's own HTTP instrumentation, and a proxy may rewrite it.
 */
export function withTraceQuery(path: string, traceparent = currentTraceparent()): { path: string; headers: Record<string, string> } {
  if (!traceparent) return { path, headers: {} };
  return { path: `${path}${path.includes('?') ? '&' : '?'}${TRACEPARENT_HEADER}=${traceparent}`, headers: { [TRACEPARENT_HEADER]: traceparent } };
}
