import type { Request } from 'express';
import { inSpan, SDK_TRACE_SCOPE, TRACE_ATTRIBUTES, TRACEPARENT_HEADER } from './tracing';
import { TRANSACTION_HEADER } from './wire';

const GID_IN_BODY = /"gid"\s*:\s*"([^"]{1,200})"/;

/**
 * A coordinator's call (prepare, commit, rollback, status) as a server span,
 * a child of the coordinator's span for that branch: its `traceparent` comes
 * in the call's query, which the coordinator signed (the router checked the
 * signature before this runs), so a forged one never parents our spans.
 */
export function tracedCall<T>(participant: string, body: string, req: Request, run: () => Promise<T>): Promise<T> {
  const step = req.method === 'GET' ? 'status' : req.path.replace(/^\/+/, '');
  const traceparent = typeof req.query[TRACEPARENT_HEADER] === 'string' ? req.query[TRACEPARENT_HEADER] : undefined;
  const gid = req.method === 'GET' ? String(req.params.gid) : GID_IN_BODY.exec(body)?.[1];
  const attributes = { [TRACE_ATTRIBUTES.txId]: req.header(TRANSACTION_HEADER), [TRACE_ATTRIBUTES.gid]: gid, [TRACE_ATTRIBUTES.participant]: participant };
  return inSpan(`twopc.participant.${step}`, attributes, run, { kind: 'server', scope: SDK_TRACE_SCOPE, ...(traceparent ? { parent: traceparent } : {}) });
}
