import type { z } from 'zod';
import type { BranchService } from './branch-service';
import type { BranchRef } from './branch-types';
import { TransactionAbortedError, TwopcError } from './errors';
import { parseGid } from './gid';
import { problemOf } from './problem';
import { BATCH_BUDGET_QUERY, BatchCall, BranchCall, CommitCall, MAX_REASON_CHARS, batchRequestSchema, branchCallSchema, commitCallSchema, firstIssue, gidSchema } from './wire';
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
  // and its answer, a refusal included, is that route's status and body, with the call's op and gid.
  async batch(deps: ProtocolDeps, body: string, query = ''): Promise<CallAnswer> {
    const { calls } = parseBody(body, batchRequestSchema);
    const budgetMs = budgetOf(query);
    const results = await Promise.all(calls.map((call) => withinBudget(batchedCall(deps, call).then(([status, answer]) => ({ status, body: answer }), resultOf), call, budgetMs)));
    return [200, { results: results.map((r, i) => ({ ...r, op: calls[i].op, gid: calls[i].gid })) }];
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
  // A reason may hold a driver's whole error chain: the wire carries what the coordinator keeps.
  return vote.vote === 'no' ? [409, { ...vote, reason: vote.reason.slice(0, MAX_REASON_CHARS) }] : [200, vote];
}

async function commitCall(deps: ProtocolDeps, call: CommitCall): Promise<CallAnswer> {
  const ref = branchRef(deps, call);
  try {
    await deps.service.commit(ref, call.onePhase === true);
  } catch (e) {
    // Only a one-phase commit can end in "did not commit"; a two-phase one is retried until it does.
    if (call.onePhase && e instanceof TransactionAbortedError) return [409, { state: 'rolled-back', reason: e.reason.message.slice(0, MAX_REASON_CHARS) }];
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

type BatchResult = { status: number; body: object };

function resultOf(e: unknown): BatchResult {
  const problem = problemOf(e);
  return { status: problem.status, body: problem.detail === undefined ? problem : { ...problem, detail: problem.detail.slice(0, MAX_REASON_CHARS) } };
}

/** The batch's budget per call (its query's `budgetMs`), or undefined: no budget (an older coordinator). */
function budgetOf(query: string): number | undefined {
  const budget = Number(new URLSearchParams(query).get(BATCH_BUDGET_QUERY) ?? NaN);
  return Number.isInteger(budget) && budget > 0 ? budget : undefined;
}

/**
 * The call's result, or, once the batch's budget is spent, a 503 for it
 * alone while it runs on (through its branch's queue, as a per-call request
 * whose answer was lost would): the coordinator takes it as outcome unknown,
 * a "no" before the decision, a retry after; the other calls' answers leave.
 */
function withinBudget(result: Promise<BatchResult>, call: BatchCall, budgetMs: number | undefined): Promise<BatchResult> {
  if (budgetMs === undefined) return result;
  let timer: NodeJS.Timeout | undefined;
  const spent = new Promise<BatchResult>((resolve) => {
    timer = setTimeout(() => resolve(resultOf(new TwopcError('outcome-unknown', `${call.op} of ${call.gid} was not done within the batch's budget of ${budgetMs} ms; it runs on, ask again`, { gid: call.gid }))), budgetMs);
  });
  return Promise.race([result, spent]).finally(() => clearTimeout(timer));
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
