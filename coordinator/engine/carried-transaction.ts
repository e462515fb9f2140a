import { type AbortReason, buildGid, isTxId, TwopcError } from './ports/protocol';
import { txIdOwner } from './ports/owned-tx-id';
import type { BranchInfo } from './ports/types';
import type { EngineContext } from './engine-context';
import { assertAccepting } from './engine-errors';
import { admissionRefusal } from './admission';
import { abortLive, abortTransaction, applicationAbort } from './live-endings';
import { branchInfo, LiveTransaction } from './live-transaction';
import { statusFromSnapshot } from './transaction-status';

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
  if (branches.length === 0 || branches.length > MAX_CARRIED_BRANCHES) throw refuse(`a carried commit or abort holds 1 to ${MAX_CARRIED_BRANCHES} registrations`);
  const seen = new Set<number>();
  for (const b of branches) {
    if (seen.has(b.branchId)) throw refuse(`two registrations with branchId ${b.branchId}`);
    seen.add(b.branchId);
    if (b.gid !== buildGid(ctx.config.gidPrefix, txId, b.branchId)) throw refuse(`registration ${b.branchId}: its gid is not ${ctx.config.gidPrefix}_<txId>_${b.branchId}`);
    if (!ctx.participants.accepts(b.participant, b.url)) throw refuse(`participant ${JSON.stringify(b.participant)} is not configured on this coordinator`);
  }
}

/**
 * The transaction a carried call (commit or abort) is about. Undefined when
 * this coordinator has it already: live here with the same branches (a
 * retry joins it) or in the log (answered from it, whatever the id's age).
 * Otherwise, if the id may still be recorded (minted within the carried
 * window), records it (recordCarried) and hands it to `started` in the same
 * synchronous run as the checks that found nothing: no other call can
 * record the id in between, and what `started` sets (an abort's `aborting`)
 * is set before any other call can find the transaction.
 *
 * Refused: an id that carries an owner tag (the engine's own ids; a client
 * mints untagged ones), an id outside the window (a participant may already
 * have presumed it aborted, and a transaction completed that long ago may be
 * forgotten: nothing may be recorded for it, neither a retried commit nor an
 * abort that would make a forgotten commit look aborted), registrations whose
 * GID is not the coordinator's for that id and branch, and registrations
 * other than those the transaction has (`state-conflict`).
 */
async function carriedTransaction(
  ctx: EngineContext,
  txId: string,
  branches: readonly CarriedBranch[],
  call: 'commit' | 'abort',
  started?: (tx: LiveTransaction) => void,
): Promise<LiveTransaction | undefined> {
  if (!carriesRegistration(ctx)) throw refuse('this coordinator does not take carried registrations (see GET /v1/capabilities)');
  if (!isTxId(txId)) throw refuse('id must be a transaction id (UUID)', 'id');
  if (txIdOwner(txId) !== undefined) throw refuse('a carried transaction id must not carry an owner tag (mint it with mintCarriedTxId)', 'id');
  checkBranches(ctx, txId, branches);
  const conflict = (state: string) => new TwopcError('state-conflict', `transaction ${txId} has other branches than this ${call} carries`, { txId, state });
  const joined = (): boolean => {
    const live = ctx.live.get(txId);
    if (!live) return false;
    if (!live.carried || !sameBranches(liveBranches(live), branches)) throw conflict(live.state);
    return true;
  };
  if (joined()) return undefined;
  // In the log (an earlier attempt): answered from the log, whatever the id's age, as long as the call
  // carries the same registrations. An outcome kept without its branches cannot be compared: it is
  // answered as it is.
  const logged = await ctx.log.get(txId);
  if (logged) {
    if (logged.branches.length > 0 && !sameBranches(new Map(logged.branches.map((b) => [b.branchId, b])), branches)) throw conflict(statusFromSnapshot(logged).state);
    return undefined;
  }
  if (joined()) return undefined;
  if (!mintedRecently(ctx, txId)) {
    throw refuse(`a carried transaction id must be a UUID v7 minted within the last ${carriedWindowMs(ctx)} ms`, 'id');
  }
  if (call === 'abort') {
    // It records a transaction: refused at the memory caps, as a carried commit is (TransactionEngine.commitCarried).
    const refused = admissionRefusal(ctx);
    if (refused) throw refused;
  }
  assertAccepting(ctx);
  const tx = recordCarried(ctx, txId, branches);
  started?.(tx);
  return tx;
}

/**
 * Makes the transaction of a carried commit live here, with its branches, so
 * that the ordinary commit runs it (LiveProtocol.commit: it waits for every
 * registration write before its first PREPARE, so a branch is registered
 * before it can be prepared, as with enlist). Returns without creating
 * anything when the transaction is already live here with the same branches
 * (a retried commit joins the running one) or already in the log (a retried
 * commit is answered from it: its decision, or recovery's rule). Refusals:
 * carriedTransaction.
 */
export async function adoptCarried(ctx: EngineContext, txId: string, branches: readonly CarriedBranch[]): Promise<void> {
  await carriedTransaction(ctx, txId, branches, 'commit');
}

/**
 * A carried abort (docs/protocol.md): the application gives up on a
 * transaction it never committed and hands the coordinator the registrations
 * it got, so their branches are rolled back now rather than at their
 * timeout. An id the coordinator has (live here, or in the log) is aborted as
 * any transaction is (`abortTransaction`: 409 if it committed). An id it does
 * not have, within the carried window, is recorded exactly as a carried
 * commit records it and aborted at once (carriedTransaction's `started`):
 * `aborting` is set before any commit can find the transaction, so a commit
 * that comes, or came concurrently, joins the abort and sends no PREPARE. The
 * abort decision goes through the register like every other, once the
 * registrations are durable (runAbort), so no crash can lose the transaction
 * after anyone was told it aborted.
 */
export async function abortCarried(ctx: EngineContext, txId: string, branches: readonly CarriedBranch[], reason: Partial<AbortReason>): Promise<{ txId: string; state: 'aborted' }> {
  const tx = await carriedTransaction(ctx, txId, branches, 'abort', (created) => void abortLive(ctx, created, applicationAbort(reason), 'engine').catch(() => undefined));
  if (!tx) return abortTransaction(ctx, txId, reason);
  await tx.aborting;
  return { txId: tx.id, state: 'aborted' };
}

/** Records a carried transaction (begin and one enlist per branch), makes it live here, and forces its records durable (`registering`). */
function recordCarried(ctx: EngineContext, txId: string, branches: readonly CarriedBranch[]): LiveTransaction {
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
  return tx;
}
