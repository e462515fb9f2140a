import type { z } from 'zod';
import type { BranchService } from './branch-service';
import type { BranchRef } from './branch-types';
import { TransactionAbortedError, TwopcError } from './errors';
import { parseGid } from './gid';
import { problemOf } from './problem';
import { BatchCall, BranchCall, CommitCall, batchRequestSchema, branchCallSchema, commitCallSchema, firstIssue, gidSchema } from './wire';
import { branchSpan } from './traced-call';

export interface ProtocolDeps {
  name: string;
  gidPrefix: string;
  secret: string;
  maxBodyBytes: number;
  service: BranchService;
  /** False once the participant is closed (or not started): calls then get 503 `shutting-down`. */
  isOpen(): boolean;
}

/** A call's answer: its status and JSON body. */
export type CallAnswer = [status: number, body: object];

/**
 * The coordinator's calls (SPEC §6 "Participant wire protocol", and the
 * batched form of docs/protocol.md), free of any HTTP server: each takes the
 * raw body (already signature-checked) and returns the answer, or throws an
 * error the caller answers as a problem.
 */
export const protocolCalls = {
  // async: a refused body rejects the promise, it never throws at the caller.
  prepare: async (deps: ProtocolDeps, body: string) => prepareCall(deps, parseBody(body, branchCallSchema)),
  commit: async (deps: ProtocolDeps, body: string) => commitCall(deps, parseBody(body, commitCallSchema)),
  rollback: async (deps: ProtocolDeps, body: string) => rollbackCall(deps, parseBody(body, branchCallSchema)),
  // Each call runs as its per-call route would (concurrently, each through its branch's queue),
  // and its answer, a refusal included, is that route's status and body.
  async batch(deps: ProtocolDeps, body: string): Promise<CallAnswer> {
    const { calls } = parseBody(body, batchRequestSchema);
    const results = await Promise.all(
      calls.map((call) =>
        batchedCall(deps, call).then(
          ([status, answer]) => ({ status, body: answer }),
          (e: unknown) => {
            const problem = problemOf(e);
            return { status: problem.status, body: problem };
          },
        ),
      ),
    );
    return [200, { results }];
  },
  /** `observe`: read only, ending nothing (an operator's commit check; see BranchService.recordedState). */
  async status(deps: ProtocolDeps, rawGid: string, observe: boolean): Promise<CallAnswer> {
    const gid = gidSchema.safeParse(rawGid);
    if (!gid.success) throw new TwopcError('invalid-input', `gid: ${gid.error.issues[0].message}`, { field: 'gid' });
    const parsed = parseGid(gid.data);
    if (!parsed) throw new TwopcError('invalid-input', 'gid: not a valid GID', { field: 'gid' });
    const ref = branchRef(deps, { txId: parsed.txId, branchId: parsed.branchId, gid: gid.data });
    return [200, { state: await (observe ? deps.service.recordedState(ref) : deps.service.status(ref)) }];
  },
};

async function prepareCall(deps: ProtocolDeps, call: BranchCall): Promise<CallAnswer> {
  const vote = await deps.service.prepare(branchRef(deps, call));
  return [vote.vote === 'no' ? 409 : 200, vote];
}

async function commitCall(deps: ProtocolDeps, call: CommitCall): Promise<CallAnswer> {
  const ref = branchRef(deps, call);
  try {
    await deps.service.commit(ref, call.onePhase === true);
  } catch (e) {
    // Only a one-phase commit can end in "did not commit"; a two-phase one is retried until it does.
    if (call.onePhase && e instanceof TransactionAbortedError) return [409, { state: 'rolled-back', reason: e.reason.message }];
    throw e;
  }
  return [200, { state: 'committed' }];
}

async function rollbackCall(deps: ProtocolDeps, call: BranchCall): Promise<CallAnswer> {
  await deps.service.rollback(branchRef(deps, call));
  return [200, { state: 'rolled-back' }];
}

function batchedCall(deps: ProtocolDeps, { op, traceparent, ...call }: BatchCall): Promise<CallAnswer> {
  return branchSpan(deps.name, op, call, traceparent, () => {
    if (op === 'prepare') return prepareCall(deps, call);
    if (op === 'commit') return commitCall(deps, call);
    return rollbackCall(deps, call);
  });
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
function branchRef(deps: ProtocolDeps, call: BranchCall): BranchRef {
  const parsed = parseGid(call.gid);
  if (!parsed || parsed.txId !== call.txId || parsed.branchId !== call.branchId) {
    throw new TwopcError('invalid-input', `gid: ${call.gid} is not the GID of transaction ${call.txId} branch ${call.branchId}`, { field: 'gid' });
  }
  if (parsed.prefix !== deps.gidPrefix) {
    throw new TwopcError('invalid-input', `gid: ${call.gid} does not have this participant's prefix "${deps.gidPrefix}"`, { field: 'gid' });
  }
  return { txId: call.txId, branchId: call.branchId, gid: call.gid, participant: deps.name };
}
