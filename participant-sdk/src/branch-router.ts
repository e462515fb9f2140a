import express, { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import type { z } from 'zod';
import type { BranchService } from './branch-service';
import type { BranchRef } from './branch-types';
import { TransactionAbortedError, TwopcError } from './errors';
import { parseGid } from './gid';
import { PROBLEM_CONTENT_TYPE, problemOf } from './problem';
import { verifySignature } from './signature';
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

// The verified body text of a call, between the signature check and the handler.
const BODY = Symbol('twopc-body');
type SignedRequest = Request & { [BODY]?: string };

/**
 * The coordinator's calls (SPEC §6 "Participant wire protocol"): thin
 * handlers over BranchService. Middleware sits on these routes only, so the
 * router can be mounted anywhere, even at the root of the service's own app.
 */
export function createBranchRouter(deps: BranchRouterDeps): Router {
  const router = express.Router();
  // Raw bytes for every content type: the signature covers the exact body, so it is checked before any parsing.
  const readBody = express.raw({ type: () => true, limit: deps.maxBodyBytes });
  const guard: RequestHandler[] = [bodyReader(readBody), signatureCheck(deps)];

  router.post('/prepare', ...guard, handle(async (req, res) => {
    const ref = branchRef(deps, parseBody(req, branchCallSchema));
    const vote = await deps.service.prepare(ref);
    res.status(vote.vote === 'no' ? 409 : 200).json(vote);
  }));

  router.post('/commit', ...guard, handle(async (req, res) => {
    const call = parseBody(req, commitCallSchema);
    const ref = branchRef(deps, call);
    try {
      await deps.service.commit(ref, call.onePhase === true);
    } catch (e) {
      // Only a one-phase commit can end in "did not commit"; a two-phase one is retried until it does.
      if (call.onePhase && e instanceof TransactionAbortedError) {
        res.status(409).json({ state: 'rolled-back', reason: e.reason.message });
        return;
      }
      throw e;
    }
    res.status(200).json({ state: 'committed' });
  }));

  router.post('/rollback', ...guard, handle(async (req, res) => {
    await deps.service.rollback(branchRef(deps, parseBody(req, branchCallSchema)));
    res.status(200).json({ state: 'rolled-back' });
  }));

  router.get('/branches/:gid', ...guard, handle(async (req, res) => {
    const gid = gidSchema.safeParse(req.params.gid);
    if (!gid.success) throw new TwopcError('invalid-input', `gid: ${gid.error.issues[0].message}`, { field: 'gid' });
    const parsed = parseGid(gid.data);
    if (!parsed) throw new TwopcError('invalid-input', 'gid: not a valid GID', { field: 'gid' });
    const ref = branchRef(deps, { txId: parsed.txId, branchId: parsed.branchId, gid: gid.data });
    res.status(200).json({ state: await deps.service.status(ref) });
  }));

  return router;

  function handle(fn: (req: SignedRequest, res: Response) => Promise<void>): RequestHandler {
    return (req, res) => {
      if (!deps.isOpen()) return sendProblem(res, new TwopcError('shutting-down', `participant "${deps.name}" is not serving (closed or not started)`));
      fn(req, res).catch((e: unknown) => sendProblem(res, e));
    };
  }
}

function bodyReader(readBody: RequestHandler): RequestHandler {
  return (req, res, next) => {
    readBody(req, res, (err?: unknown) => {
      if (!err) return next();
      const status = typeof err === 'object' && err !== null && 'status' in err ? Number(err.status) : 400;
      if (status === 413) return sendProblem(res, new TwopcError('payload-too-large', 'the request body is over the limit', { field: '(body)' }));
      sendProblem(res, new TwopcError('invalid-input', `the request body could not be read: ${err instanceof Error ? err.message : String(err)}`, { field: '(body)' }));
    });
  };
}

function signatureCheck(deps: BranchRouterDeps): RequestHandler {
  return (req: SignedRequest, res: Response, next: NextFunction) => {
    const body = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    // The path as the coordinator addressed it: the mount point included, with the query.
    const check = verifySignature(deps.secret, req.get(SIGNATURE_HEADER), req.method, req.originalUrl, body);
    if (!check.ok) return sendProblem(res, new TwopcError('unauthorized', `${SIGNATURE_HEADER} ${check.reason}: calls must be signed by the coordinator`, { field: SIGNATURE_HEADER }));
    req[BODY] = body;
    next();
  };
}

function parseBody<S extends z.ZodType>(req: SignedRequest, schema: S): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(req[BODY] ?? '');
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

function sendProblem(res: Response, error: unknown): void {
  if (res.headersSent) return;
  const problem = problemOf(error);
  res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem));
}
