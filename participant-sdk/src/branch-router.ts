import express, { Request, RequestHandler, Response, Router } from 'express';
import type { z } from 'zod';
import type { BranchService } from './branch-service';
import type { BranchRef } from './branch-types';
import { TransactionAbortedError, TwopcError } from './errors';
import { parseGid } from './gid';
import { PROBLEM_CONTENT_TYPE, problemOf } from './problem';
import { verifySignature } from './signature';
import { tracedCall } from './traced-call';
import { BranchCall, SIGNATURE_HEADER, branchCallSchema, commitCallSchema, firstIssue, gidSchema } from './wire';

export interface BranchRouterDeps {
  name: string;
  gidPrefix: string;
  secret: string;
  maxBodyBytes: number;
  service: BranchService;
  /** False once the participant is closed (or not started): calls then get 503 `shutting-down`. */
  isOpen(): boolean;
}

/** A call's answer: its status and JSON body. */
type CallAnswer = [status: number, body: object];

/**
 * The coordinator's calls (SPEC §6 "Participant wire protocol"): thin
 * handlers over BranchService. Each route is one handler that reads the raw
 * body, checks the signature over it, and only then parses and runs the call
 * (one handler rather than a middleware chain: these calls are on every
 * transaction's path). It sits on these routes only, so the router can be
 * mounted anywhere, even at the root of the service's own app.
 */
export function createBranchRouter(deps: BranchRouterDeps): Router {
  const router = express.Router();
  // Raw bytes for every content type: the signature covers the exact body, so it is checked before any parsing.
  const readBody = express.raw({ type: () => true, limit: deps.maxBodyBytes });
  const signed = (run: (body: string, req: Request) => Promise<CallAnswer>): RequestHandler => signedCall(deps, readBody, run);

  router.post('/prepare', signed(async (body) => {
    const vote = await deps.service.prepare(branchRef(deps, parseBody(body, branchCallSchema)));
    return [vote.vote === 'no' ? 409 : 200, vote];
  }));

  router.post('/commit', signed(async (body) => {
    const call = parseBody(body, commitCallSchema);
    const ref = branchRef(deps, call);
    try {
      await deps.service.commit(ref, call.onePhase === true);
    } catch (e) {
      // Only a one-phase commit can end in "did not commit"; a two-phase one is retried until it does.
      if (call.onePhase && e instanceof TransactionAbortedError) return [409, { state: 'rolled-back', reason: e.reason.message }];
      throw e;
    }
    return [200, { state: 'committed' }];
  }));

  router.post('/rollback', signed(async (body) => {
    await deps.service.rollback(branchRef(deps, parseBody(body, branchCallSchema)));
    return [200, { state: 'rolled-back' }];
  }));

  router.get('/branches/:gid', signed(async (_body, req) => {
    const gid = gidSchema.safeParse(req.params.gid);
    if (!gid.success) throw new TwopcError('invalid-input', `gid: ${gid.error.issues[0].message}`, { field: 'gid' });
    const parsed = parseGid(gid.data);
    if (!parsed) throw new TwopcError('invalid-input', 'gid: not a valid GID', { field: 'gid' });
    const ref = branchRef(deps, { txId: parsed.txId, branchId: parsed.branchId, gid: gid.data });
    // `observe=1`: read only, ending nothing (an operator's commit check; see BranchService.recordedState).
    const observe = req.query.observe === '1';
    return [200, { state: await (observe ? deps.service.recordedState(ref) : deps.service.status(ref)) }];
  }));

  return router;
}

/** Body, then signature, then "is the participant open", then the call: each refusal is a problem answer. */
function signedCall(deps: BranchRouterDeps, readBody: RequestHandler, run: (body: string, req: Request) => Promise<CallAnswer>): RequestHandler {
  return (req, res) => {
    readBody(req, res, (err?: unknown) => {
      if (err) return sendProblem(res, bodyError(err));
      const body = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
      // The path as the coordinator addressed it: the mount point included, with the query.
      const check = verifySignature(deps.secret, req.headers[SIGNATURE_HEADER] as string | undefined, req.method, req.originalUrl, body);
      if (!check.ok) return sendProblem(res, new TwopcError('unauthorized', `${SIGNATURE_HEADER} ${check.reason}: calls must be signed by the coordinator`, { field: SIGNATURE_HEADER }));
      if (!deps.isOpen()) return sendProblem(res, new TwopcError('shutting-down', `participant "${deps.name}" is not serving (closed or not started)`));
      tracedCall(deps.name, body, req, () => run(body, req)).then(
        ([status, answer]) => sendJson(res, status, answer),
        (e: unknown) => sendProblem(res, e),
      );
    });
  };
}

function bodyError(err: unknown): TwopcError {
  const status = typeof err === 'object' && err !== null && 'status' in err ? Number(err.status) : 400;
  if (status === 413) return new TwopcError('payload-too-large', 'the request body is over the limit', { field: '(body)' });
  return new TwopcError('invalid-input', `the request body could not be read: ${err instanceof Error ? err.message : String(err)}`, { field: '(body)' });
}

function parseBody<S extends z.ZodType>(body: string, schema: S): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new TwopcError('invalid-input', '(body): must be a JSON object', { field: '(body)' });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const { field, message } = firstIssue(parsed.error);
    throw new TwopcError('invalid-input', message, { field });
  }
  return parsed.data;
}

/** The branch a call names, once its GID is known to belong to its txId and branchId, and to our prefix. */
function branchRef(deps: BranchRouterDeps, call: BranchCall): BranchRef {
  const parsed = parseGid(call.gid);
  if (!parsed || parsed.txId !== call.txId || parsed.branchId !== call.branchId) {
    throw new TwopcError('invalid-input', `gid: ${call.gid} is not the GID of transaction ${call.txId} branch ${call.branchId}`, { field: 'gid' });
  }
  if (parsed.prefix !== deps.gidPrefix) {
    throw new TwopcError('invalid-input', `gid: ${call.gid} does not have this participant's prefix "${deps.gidPrefix}"`, { field: 'gid' });
  }
  return { txId: call.txId, branchId: call.branchId, gid: call.gid, participant: deps.name };
}

/**
 * Writes a JSON answer on node's response directly: express's `res.json`
 * would look up the app's JSON settings, compute an ETag and re-parse the
 * content type on every call, none of which the coordinator reads.
 */
function sendJson(res: Response, status: number, body: object, contentType = 'application/json; charset=utf-8'): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendProblem(res: Response, error: unknown): void {
  const problem = problemOf(error);
  sendJson(res, problem.status, problem, `${PROBLEM_CONTENT_TYPE}; charset=utf-8`);
}
