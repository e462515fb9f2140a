import { buildGid, isTxId, TwopcError } from './ports/protocol';
import type { DecisionRecord } from './ports/decision-log';
import { txIdOwner } from './ports/owned-tx-id';
import type { BranchInfo } from './ports/types';
import { decideAbort, type EngineContext } from './engine-context';
import { assertAccepting } from './engine-errors';
import { expire } from './live-endings';
import type { LiveTransaction } from './live-transaction';

/** A branch a participant opened on its own and registers through the commit call that carries it (docs/protocol.md). */
export interface CarriedBranch {
  participant: string;
  url?: string;
  branchId: number;
  gid: string;
}

/** Registrations one carried commit may hold, at most. */
export const MAX_CARRIED_BRANCHES = 64;
/** A client-minted id's time (UUID v7) may be ahead of this clock by this much. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

function refuse(message: string, field = 'registrations'): TwopcError {
  return new TwopcError('invalid-input', message, { field });
}

/** Whether this coordinator runs carried registration: configured, and one instance on its log. */
export function carriesRegistration(ctx: EngineContext): boolean {
  return ctx.config.carriedRegistration && ctx.ownership.token === undefined;
}

/** A UUID v7 minted within the longest timeout (and not ahead of this clock by more than the skew allowed): the ids a carried commit may still record. */
function mintedRecently(ctx: EngineContext, txId: string): boolean {
  const minted = parseInt(txId.replace(/-/g, '').slice(0, 12), 16);
  const now = Date.now();
  return txId[14] === '7' && minted >= now - ctx.config.maxTimeoutMs && minted <= now + CLOCK_SKEW_MS;
}

function sameBranches(tx: LiveTransaction, branches: readonly CarriedBranch[]): boolean {
  if (tx.branches.size !== branches.length) return false;
  return branches.every((b) => {
    const live = tx.branches.get(b.branchId)?.info;
    return live !== undefined && live.gid === b.gid && live.participant === b.participant && live.url === b.url;
  });
}

function checkBranches(ctx: EngineContext, txId: string, branches: readonly CarriedBranch[]): void {
  if (branches.length === 0 || branches.length > MAX_CARRIED_BRANCHES) throw refuse(`a carried commit holds 1 to ${MAX_CARRIED_BRANCHES} registrations`);
  const seen = new Set<number>();
  for (const b of branches) {
    if (seen.has(b.branchId)) throw refuse(`two registrations with branchId ${b.branchId}`);
    seen.add(b.branchId);
    if (b.gid !== buildGid(ctx.config.gidPrefix, txId, b.branchId)) throw refuse(`registration ${b.branchId}: its gid is not ${ctx.config.gidPrefix}_<txId>_${b.branchId}`);
    if (!ctx.participants.accepts(b.participant, b.url)) throw refuse(`participant ${JSON.stringify(b.participant)} is not configured on this coordinator`);
  }
}

/**
 * Makes the transaction of a carried commit live here, with its branches, so
 * that the ordinary commit runs it (LiveProtocol.commit: it waits for every
 * registration write before its first PREPARE, so a branch is registered
 * before it can be prepared, as with enlist). Returns without creating
 * anything when the transaction is already live here with the same branches
 * (a retried commit joins the running one) or already in the log (a retried
 * commit is answered from it: its decision, or recovery's rule).
 *
 * Refused: an id that carries an owner tag (the engine's own ids; a client
 * mints untagged ones), an id older than the longest timeout (a participant
 * may already have presumed it aborted, and a transaction completed that long
 * ago may be forgotten, so its retry must not run it again), registrations
 * whose GID is not the coordinator's for that id and branch.
 */
export async function adoptCarried(ctx: EngineContext, txId: string, branches: readonly CarriedBranch[]): Promise<void> {
  if (!carriesRegistration(ctx)) throw refuse('this coordinator does not take carried registrations (see GET /v1/capabilities)');
  if (!isTxId(txId)) throw refuse('id must be a transaction id (UUID)', 'id');
  if (txIdOwner(txId) !== undefined) throw refuse('a carried transaction id must not carry an owner tag (mint it with mintCarriedTxId)', 'id');
  if (!mintedRecently(ctx, txId)) {
    throw refuse(`a carried transaction id must be a UUID v7 minted within the last ${ctx.config.maxTimeoutMs} ms`, 'id');
  }
  checkBranches(ctx, txId, branches);
  const joined = (): boolean => {
    const live = ctx.live.get(txId);
    if (!live) return false;
    if (!live.carried || !sameBranches(live, branches)) {
      throw new TwopcError('state-conflict', `transaction ${txId} is running here with other branches`, { txId, state: live.state });
    }
    return true;
  };
  if (joined()) return;
  // Anything the log holds of it (a decision an inquiry made, an earlier attempt): the commit answers from the log.
  if (await ctx.log.get(txId)) return;
  if (joined()) return;
  assertAccepting(ctx);
  const createdAt = Date.now();
  const expiresAt = createdAt + ctx.config.defaultTimeoutMs;
  const tx: LiveTransaction = { id: txId, createdAt, expiresAt, state: 'active', branches: new Map(), nextBranchId: 1, enlistWrites: [], carried: true };
  ctx.live.set(txId, tx);
  void ctx.log.append({ type: 'begin', txId, at: createdAt, expiresAt }).catch(() => undefined);
  for (const b of branches) {
    const info: BranchInfo = { branchId: b.branchId, gid: b.gid, participant: b.participant, ...(b.url ? { url: b.url } : {}) };
    tx.branches.set(b.branchId, { info, state: 'active' });
    // The log keeps one transaction's records in append order: the begin is written no later than these.
    const written = ctx.log.append({ type: 'enlist', txId, at: createdAt, branch: info });
    written.catch(() => undefined);
    tx.enlistWrites.push(written);
  }
  tx.timer = setTimeout(() => void expire(ctx, tx), ctx.config.defaultTimeoutMs);
  tx.timer.unref();
}

/**
 * An inquiry about an id the register does not know, under carried
 * registration: decides abort for it through the register, durably, before
 * anyone is told. A participant may have prepared a carried branch of it (a
 * commit's records lost in a crash after its PREPAREs went out) and will roll
 * back on this answer; a later commit that carries the same registrations
 * then finds this decision and fails (409), and a commit already running
 * here gets it back from `decide` (single assignment).
 */
export async function abortUnknown(ctx: EngineContext, txId: string): Promise<DecisionRecord | undefined> {
  // Older ids need no decision: no carried commit may record them any more (adoptCarried), and one the
  // register forgot after its retention must stay "not found", not become "aborted".
  if (!carriesRegistration(ctx) || !isTxId(txId) || !mintedRecently(ctx, txId) || ctx.live.has(txId)) return undefined;
  const decision = await decideAbort(ctx.log, txId, [], 'recovery', { cause: 'unknown-at-inquiry', message: 'the coordinator did not know this transaction when it was asked about it' });
  await ctx.log.makeDurable?.();
  return decision;
}
