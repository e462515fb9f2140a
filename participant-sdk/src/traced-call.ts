import { inSpan, SDK_TRACE_SCOPE, TRACE_ATTRIBUTES, TRACEPARENT_HEADER } from './tracing';

/**
 * A coordinator's call (prepare, commit, rollback, status) as a server span,
 * a child of the coordinator's span for that branch. Its `traceparent` comes
 * signed: in the call's query (the coordinator signs the path with its
 * query), or in a batched call's body, and the handler checked the signature
 * before this runs, so a forged one never parents our spans.
 */
export function branchSpan<T>(participant: string, step: string, ids: { txId?: string; gid?: string }, traceparent: string | undefined, run: () => Promise<T>): Promise<T> {
  const attributes = { [TRACE_ATTRIBUTES.txId]: ids.txId, [TRACE_ATTRIBUTES.gid]: ids.gid, [TRACE_ATTRIBUTES.participant]: participant };
  return inSpan(`twopc.participant.${step}`, attributes, run, { kind: 'server', scope: SDK_TRACE_SCOPE, ...(traceparent ? { parent: traceparent } : {}) });
}

/** The signed `traceparent` of a call's query (`withTraceQuery`), if any. */
export function traceparentOfQuery(url: string): string | undefined {
  const q = url.indexOf('?');
  return q === -1 ? undefined : (new URLSearchParams(url.slice(q + 1)).get(TRACEPARENT_HEADER) ?? undefined);
}
