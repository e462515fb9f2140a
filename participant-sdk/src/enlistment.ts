import type { BranchBook, BranchEntry } from './branch-book';
import { recordVote } from './branch-service';
import type { BranchRef } from './branch-types';
import type { CoordinatorClient } from './coordinator-client';
import { TransactionAbortedError, TwopcError, errorMessage } from './errors';
import { isTxId, parseGid } from './gid';
import type { BranchClient, PostgresParticipant } from './postgres';
import { MAX_TIMER_MS, type EnlistMode } from './participant-options';
import type { SdkLogger } from './sdk-logger';
import { BATCH_FEATURE } from './wire';

export interface EnlistmentDeps {
  name: string;
  publicUrl: string;
  gidPrefix: string;
  heldGraceMs: number;
  maxHeldMs: number;
  postgres: PostgresParticipant;
  coordinator: CoordinatorClient;
  book: BranchBook;
  logger: SdkLogger;
}

/**
 * SPEC §3 step 2 and §6 `enlist`: registers the branch (before anything can
 * prepare it, so a prepared branch is always findable), runs the work in the
 * branch transaction, then holds the connection (held) or PREPAREs at once
 * (eager). Whatever fails, the branch ends rolled back here and its vote is
 * recorded as "no", so the coordinator's prepare aborts the transaction with
 * the reason; the coordinator is not called to abort: the application that
 * began the transaction owns that call, and presumed abort needs no more.
 */
export async function runEnlisted<T>(deps: EnlistmentDeps, txId: string, work: (client: BranchClient) => Promise<T>, mode: EnlistMode): Promise<T> {
  if (!isTxId(txId)) throw new TwopcError('invalid-input', `txId must be a lower-case UUID (got ${JSON.stringify(txId)})`, { field: 'txId' });
  // The mode tells the coordinator whether it must write the registration before answering:
  // an eager branch prepares right after, a held one only when the coordinator asks.
  // `accepts`: the router serves the batched form too, so the coordinator may batch its calls to this branch.
  const answer = await deps.coordinator.enlist(txId, { participant: deps.name, url: deps.publicUrl, prepare: mode, accepts: [BATCH_FEATURE] });
  const ref = checkAssigned(deps, txId, answer.branchId, answer.gid);
  const stated = answer.expiresAt === undefined ? NaN : Date.parse(answer.expiresAt);
  const expiresAt = Number.isFinite(stated) ? stated : undefined;
  const entry = deps.book.open(ref, expiresAt ?? Date.now() + deps.maxHeldMs);
  armTimeout(deps, entry, entry.expiresAt + (expiresAt === undefined ? 0 : deps.heldGraceMs));
  if (expiresAt === undefined) learnExpiry(deps, entry);
  try {
    const result = await workInBranch(deps, entry, work);
    if (mode === 'eager') await prepareEagerly(deps, entry);
    return result;
  } finally {
    entry.settle();
  }
}

/** Opens the branch's local transaction and runs the work in it; a failed work rolls the branch back (vote "no") and rethrows. */
export async function workInBranch<T>(deps: EnlistmentDeps, entry: BranchEntry, work: (client: BranchClient) => Promise<T>): Promise<T> {
  const client = await openBranch(deps, entry);
  try {
    return await work(client);
  } catch (e) {
    await endAfterFailedWork(deps, entry, e);
    throw e;
  }
}

function checkAssigned(deps: EnlistmentDeps, txId: string, branchId: number, gid: string): Readonly<BranchRef> {
  const parsed = parseGid(gid);
  if (!parsed || parsed.txId !== txId || parsed.branchId !== branchId) {
    throw new TwopcError('coordinator-unavailable', `the coordinator assigned GID ${gid}, which is not transaction ${txId} branch ${branchId}`, { gid });
  }
  // The self-sweep looks only for its own prefix: a branch of another one would never be swept.
  if (parsed.prefix !== deps.gidPrefix) {
    throw new TwopcError('invalid-config', `the coordinator assigned GID ${gid} but gidPrefix is "${deps.gidPrefix}": configure the coordinator cluster's prefix`, { field: 'gidPrefix' });
  }
  return Object.freeze({ txId, branchId, gid, participant: deps.name, url: deps.publicUrl });
}

async function openBranch(deps: EnlistmentDeps, entry: BranchEntry): Promise<BranchClient> {
  const { ref } = entry;
  let client: BranchClient;
  try {
    client = await deps.postgres.openBranch(ref);
  } catch (e) {
    recordVote(entry, { vote: 'no', reason: `participant "${deps.name}" could not begin the branch: ${errorMessage(e)}` });
    throw e;
  }
  entry.client = client;
  if (entry.outcome) {
    // Rolled back (the coordinator aborted, or the transaction expired) while
    // BEGIN ran: the rollback found nothing held, so end the branch now.
    const reason = entry.outcome.reason;
    await deps.postgres.rollback(ref).catch(() => undefined);
    throw new TransactionAbortedError(ref.txId, { cause: 'branch-rolled-back', message: reason, branchId: ref.branchId, participant: deps.name });
  }
  return client;
}

async function endAfterFailedWork(deps: EnlistmentDeps, entry: BranchEntry, err: unknown): Promise<void> {
  const { ref } = entry;
  await deps.book
    .run(ref.gid, async () => {
      if (!entry.vote) recordVote(entry, { vote: 'no', reason: `the work of branch ${ref.gid} on participant "${deps.name}" failed: ${messageWithCauses(err)}` });
      // Never prepared (a vote would be recorded), so a plain ROLLBACK of the held connection ends it.
      await deps.postgres.rollback(ref);
    })
    .catch((e: unknown) => deps.logger.warn({ gid: ref.gid, err: errorMessage(e) }, 'twopc: rollback after failed work failed; the connection was discarded'));
}

/**
 * The error's message and its causes': an ORM's error may wrap the driver's
 * (Drizzle's "Failed query: …" has pg's "… violates check constraint …" as
 * its cause), and the vote's reason is what tells the application why.
 */
function messageWithCauses(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth += 1) {
    const message = errorMessage(e);
    if (!parts.some((p) => p.includes(message))) parts.push(message);
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join(': ');
}

async function prepareEagerly(deps: EnlistmentDeps, entry: BranchEntry): Promise<void> {
  const { ref } = entry;
  const vote = await deps.book.run(ref.gid, async () => {
    if (entry.vote) return entry.vote;
    const v = await deps.postgres.prepare(ref);
    recordVote(entry, v);
    return v;
  });
  if (vote.vote === 'no') {
    throw new TransactionAbortedError(ref.txId, { cause: 'vote-no', message: vote.reason, branchId: ref.branchId, participant: deps.name, ...(vote.sqlState ? { sqlState: vote.sqlState } : {}) });
  }
}

/**
 * SPEC §6: a branch never asked to prepare is rolled back once its
 * transaction expired (the coordinator aborts it then anyway; this frees the
 * connection when the coordinator is gone or forgot the branch). Only an
 * unprepared branch: after a yes vote, only the decision ends it.
 */
export function armTimeout(deps: EnlistmentDeps, entry: BranchEntry, at: number): void {
  clearTimeout(entry.timer);
  if (entry.vote || entry.outcome) return;
  const wait = Math.max(at - Date.now(), 0);
  // Node runs a longer delay after 1 ms; a transaction timeout may be longer (the coordinator
  // allows months), so wait the longest it keeps and look again.
  entry.timer = wait > MAX_TIMER_MS ? setTimeout(() => armTimeout(deps, entry, at), MAX_TIMER_MS) : setTimeout(() => void rollBackExpired(deps, entry), wait);
  entry.timer.unref();
}

async function rollBackExpired(deps: EnlistmentDeps, entry: BranchEntry): Promise<void> {
  const { ref } = entry;
  await deps.book
    .run(ref.gid, async () => {
      // The phase check and rollback's own synchronous start run in one tick,
      // so a prepare queued after this cannot slip in between.
      if (entry.vote || entry.outcome || (entry.client && entry.client.phase !== 'active')) return;
      const reason = `its transaction expired at ${new Date(entry.expiresAt).toISOString()} before the coordinator asked it to prepare`;
      recordVote(entry, { vote: 'no', reason: `branch ${ref.gid} was rolled back: ${reason}` });
      deps.logger.info({ gid: ref.gid }, `twopc: held branch rolled back: ${reason}`);
      // Without a client, BEGIN is still running: openBranch sees the outcome and ends it.
      if (entry.client) await deps.postgres.rollback(ref);
    })
    .catch((e: unknown) => deps.logger.warn({ gid: ref.gid, err: errorMessage(e) }, 'twopc: rolling back an expired branch failed'));
}

/** Asks the coordinator when the transaction expires (its enlist answer did not say), off the work's path. */
function learnExpiry(deps: EnlistmentDeps, entry: BranchEntry): void {
  deps.coordinator.get(entry.ref.txId).then(
    (tx) => {
      const at = Date.parse(tx.expiresAt);
      if (!Number.isFinite(at)) return;
      entry.expiresAt = at;
      armTimeout(deps, entry, at + deps.heldGraceMs);
    },
    (e: unknown) => deps.logger.warn({ txId: entry.ref.txId, err: errorMessage(e) }, `twopc: could not learn the transaction's expiry; the branch is held for at most maxHeldMs`),
  );
}
