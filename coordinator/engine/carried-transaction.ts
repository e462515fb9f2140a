import { buildGid, isTxId, TwopcError } from './ports/protocol';
import { txIdOwner } from './ports/owned-tx-id';
import type { BranchInfo } from './ports/types';
import type { EngineContext } from './engine-context';
import { assertAccepting } from './engine-errors';
import { branchInfo, LiveTransaction } from './live-transaction';

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
const CLOCK_SKEW_MS = 60 * 1000;
/** Kept between the end of the carried window and the earliest a completed outcome can be forgotten. */
const RETENTION_MARGIN_MS = 60 * 1000;

function refuse(message: string, field = 'registrations'): TwopcError {
  return new TwopcError('invalid-input', message, { field });
}

/**
 * How long after its id was minted a carried commit may still record a
 * transaction: the longest timeout, and short enough that a retried commit is
 * refused before the log can forget the outcome of the first one. A commit
 * recorded at `a` was minted no later than `a + CLOCK_SKEW_MS`; its outcome is
 * kept until at least `a + retention`; a retry is recorded only up to
 * `minted + window`, so `CLOCK_SKEW_MS + window < retention` keeps every
 * retry of a completed transaction answered from the log, never run again.
 * Undefined: no window (a log that does not forget by time, or one whose
 * retention is too short).
 */
export function carriedWindowMs(ctx: EngineContext): number | undefined {
  const retention = ctx.log.retentionMs;
  if (retention === undefined) return undefined;
  const window = Math.min(ctx.config.maxTimeoutMs, retention - CLOCK_SKEW_MS - RETENTION_MARGIN_MS);
  return window > 0 ? window : undefined;
}

/** Whether this coordinator runs carried registration: configured, one instance on its log, and a log that keeps outcomes long enough (carriedWindowMs). */
export function carriesRegistration(ctx: EngineContext): boolean {
  return ctx.config.carriedRegistration && ctx.ownership.token === undefined && carriedWindowMs(ctx) !== undefined;
}

/** A UUID v7 minted within the carried window (and not ahead of this clock by more than the skew allowed): the ids a carried commit may still record. */
function mintedRecently(ctx: EngineContext, txId: string): boolean {
  const window = carriedWindowMs(ctx);
  const minted = parseInt(txId.replace(/-/g, '').slice(0, 12), 16);
  const now = Date.now();
  return window !== undefined && txId[14] === '7' && minted >= now - window && minted <= now + CLOCK_SKEW_MS;
}

function sameBranches(known: ReadonlyMap<number, BranchInfo>, branches: readonly CarriedBranch[]): boolean {
  if (known.size !== branches.length) return false;
  return branches.every((b) => {
    const info = known.get(b.branchId);
    return info !== undefined && info.gid === b.gid && info.participant === b.participant && info.url === b.url;
  });
}

function liveBranches(tx: LiveTransaction): Map<number, BranchInfo> {
  return new Map(tx.branches.map((b) => [b.info.branchId, b.info]));
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
  checkBranches(ctx, txId, branches);
  const conflict = (state: string) => new TwopcError('state-conflict', `transaction ${txId} has other branches than this commit carries`, { txId, state });
  const joined = (): boolean => {
    const live = ctx.live.get(txId);
    if (!live) return false;
    if (!live.carried || !sameBranches(liveBranches(live), branches)) throw conflict(live.state);
    return true;
  };
  if (joined()) return;
  // In the log (an earlier attempt of this commit): the commit answers from the log, whatever the id's
  // age, as long as it carries the same registrations. An outcome kept without its branches cannot be
  // compared: it is answered as it is.
  const logged = await ctx.log.get(txId);
  if (logged) {
    if (logged.branches.length > 0 && !sameBranches(new Map(logged.branches.map((b) => [b.branchId, b])), branches)) throw conflict(logged.decision?.outcome ?? 'logged');
    return;
  }
  if (joined()) return;
  if (!mintedRecently(ctx, txId)) {
    throw refuse(`a carried transaction id must be a UUID v7 minted within the last ${carriedWindowMs(ctx)} ms`, 'id');
  }
  assertAccepting(ctx);
  // Its own copy: the id the router sliced from the request path would keep the whole path alive in
  // the live map and the log's index for as long as the transaction is kept.
  const id = Buffer.from(txId, 'latin1').toString('latin1');
  const createdAt = Date.now();
  const timeoutMs = ctx.config.defaultTimeoutMs;
  const expiresAt = createdAt + timeoutMs;
  const tx = new LiveTransaction(id, createdAt, timeoutMs, undefined, true);
  ctx.live.set(id, tx);
  void ctx.log.append({ type: 'begin', txId: id, at: createdAt, expiresAt }).catch(() => undefined);
  const written: Promise<void>[] = [];
  for (const b of branches) {
    const info = branchInfo(b.branchId, b.gid, ctx.strings.intern(b.participant), b.url ? ctx.strings.intern(b.url) : undefined);
    tx.addBranch({ info, state: 'active', eager: false });
    // The log keeps one transaction's records in append order: the begin is written no later than these.
    written.push(ctx.log.append({ type: 'enlist', txId: id, at: createdAt, branch: info }));
  }
  // Durable before the first PREPARE (the commit waits for `registering`): a branch of a carried
  // transaction is prepared only once the register holds it on disk, so no participant can hold a
  // prepared branch of an id the register does not know (no crash can lose the registration after
  // a PREPARE went out), and an inquiry about an unknown id needs no decision of its own.
  const durable = Promise.all(written)
    .then(() => ctx.log.makeDurable?.())
    .then(() => ctx.crash.hit('after-carried-registration'));
  durable.catch(() => undefined);
  tx.addRegistration(durable);
  ctx.deadlines.add(tx, timeoutMs);
}
