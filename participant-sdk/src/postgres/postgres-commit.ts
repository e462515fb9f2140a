import { TwopcError, isTwopcError } from '../errors';
import { validateGid } from '../gid';
import type { BranchRef } from '../branch-types';
import type { HeldBranch } from './held-branch';
import { committedByXid, parseProof, preparedXid } from './commit-proof';
import { PreparedConnections } from './prepared-connections';
import type { ProvenBranchRef } from './commit-proof';
import { endBranchHolders, ensureOldBackendGone, withPooledClient } from './postgres-connection';
import { classifyPgError } from './postgres-errors';
import type { BranchEnv } from './postgres-outcomes';
import { asError, branchAborted, failureOf, outcomeUnknown } from './postgres-outcomes';
import { resultsOf } from './postgres-pool';
import * as sql from './postgres-sql';

/**
 * One-phase commit on the held connection: one round trip for a branch that
 * wrote (marker + COMMIT), two for one whose statements all looked like reads.
 * Throws TransactionAbortedError when the branch did not commit,
 * `outcome-unknown` when that cannot be learnt yet.
 */
export async function commitHeldOnePhase(env: BranchEnv, held: HeldBranch): Promise<void> {
  const { ref } = held;
  if (held.connectionLost) {
    // COMMIT was never sent: the branch cannot have committed.
    held.release(held.connectionLost);
    held.end('rolled-back', 'the connection was lost before COMMIT');
    throw branchAborted(env, ref, 'connection-lost', { reason: `the branch's connection was lost before COMMIT: ${held.connectionLost.message}` });
  }
  let tag: string | undefined;
  try {
    tag = await sendOnePhaseCommit(env, held);
  } catch (e) {
    const c = classifyPgError(e);
    if (c.kind === 'connection-lost') {
      // COMMIT may have reached the server: resolve instead of guessing.
      env.inDoubt.set(held.gid, held.backend);
      held.release(asError(e));
      return resolveOnePhase(env, ref, held);
    }
    // An error at COMMIT (deferred constraint, serialization failure) has
    // rolled the transaction back; one before it left a failed block.
    await held.rollbackAndRelease();
    held.end('rolled-back', `one-phase COMMIT failed: ${c.message}`);
    throw branchAborted(env, ref, 'commit-failed', failureOf(c, held.lastStatementError), e);
  }
  held.release();
  if (tag === 'COMMIT') return held.end('committed');
  const message = `COMMIT answered ${tag ?? 'nothing'}: the transaction block had failed`;
  held.end('rolled-back', message);
  throw branchAborted(env, ref, 'commit-failed', failureOf({ kind: 'wrong-state', message }, held.lastStatementError, true));
}

/**
 * Sends the COMMIT (with the marker if the branch wrote); returns its tag.
 * A branch whose statements all looked like reads is asked first whether it
 * wrote: if not it gets a plain COMMIT, as the marker INSERT would fail in a
 * READ ONLY transaction. A lost answer to the probe is harmless (nothing
 * committed yet); one to the COMMIT is resolved by the caller.
 */
async function sendOnePhaseCommit(env: BranchEnv, held: HeldBranch): Promise<string | undefined> {
  const client = held.connection();
  if (!held.mayHaveWritten) {
    const wrote = resultsOf(await client.query(sql.probeWrites(!held.inOpenBlock()))).at(-1)?.rows[0]?.wrote;
    if (wrote === false) return resultsOf(await client.query(sql.commitLocal()))[0]?.command;
  }
  // The in-block guard only when the connection's status cannot vouch for the block (see HeldBranch.inOpenBlock).
  return resultsOf(await client.query(sql.commitOnePhase(env.schema, held.gid, held.ref.txId, !held.inOpenBlock()))).at(-1)?.command;
}

/**
 * The outcome of a one-phase commit whose answer was lost (or asked for
 * again after this process lost the branch). The marker row commits
 * atomically with the branch's writes, so once the old backend is gone a
 * visible marker means committed and none means it did not. A branch without
 * writes has no marker either: committed or not, it changed nothing.
 */
export async function resolveOnePhase(env: BranchEnv, ref: BranchRef, held?: HeldBranch): Promise<void> {
  const gid = validateGid(ref.gid);
  const backend = env.inDoubt.get(gid);
  let committed: boolean;
  try {
    if (backend) await ensureOldBackendGone(env, backend, env.connectionLossWaitMs);
    committed = await markerVisible(env, gid);
  } catch (e) {
    // Still unknown: the engine retries commit({onePhase}), which comes back here.
    throw outcomeUnknown(env, 'resolve the one-phase COMMIT of', gid, e);
  }
  env.inDoubt.delete(gid);
  held?.end(committed ? 'committed' : 'rolled-back', 'the connection was lost during the one-phase COMMIT');
  if (!committed) throw branchAborted(env, ref, 'connection-lost', { reason: 'the connection was lost during the one-phase COMMIT and the branch did not commit' });
}

/**
 * Phase 2: COMMIT or ROLLBACK PREPARED by GID, from any pool connection (a
 * rollback first ends any backend, of any process, still holding the branch
 * unprepared). The engine retries until this returns, so "no such prepared transaction"
 * (42704) must mean success: for a rollback when no marker is visible (never
 * prepared, or already rolled back), for a commit when the marker is visible
 * (an earlier attempt committed and its answer was lost). Otherwise the
 * branch ended the other way than the decision (a commit without a marker, or
 * a rollback of a branch that committed, e.g. an operator's abort of a
 * branch someone committed by hand): a heuristic hazard, reported, never guessed.
 * With the xid the branch's yes vote carried (commitProof `xid`), the commit
 * log answers instead of the marker (see committedByXid). Under `xid` a
 * decision may name a branch without its xid (an abort written by recovery, a
 * sweep or an operator from the enlist records; a decision of an older
 * version): the xid is then read from the prepared transaction before it is
 * ended and kept until it is, so a 42704 on a later retry in this process can
 * still be judged. A branch already gone when first asked, with no xid and no
 * marker, reads as rolled back: under `xid` a hand commit of it cannot be seen.
 */
export async function finishPrepared(env: BranchEnv, ref: ProvenBranchRef, outcome: 'commit' | 'rollback'): Promise<void> {
  const gid = validateGid(ref.gid);
  const statement = outcome === 'commit' ? sql.commitPrepared(gid) : sql.rollbackPrepared(gid);
  const verb = outcome === 'commit' ? 'COMMIT PREPARED' : 'ROLLBACK PREPARED';
  try {
    const backend = env.inDoubt.get(gid);
    // A PREPARE whose answer was lost may still be running in its old
    // backend; a ROLLBACK PREPARED sent before it finishes would find
    // nothing (42704, "done") and leave it prepared behind us.
    if (backend) await ensureOldBackendGone(env, backend, env.connectionLossWaitMs);
    // The same for a branch another process holds: still open there, it could
    // yet be prepared or committed in one phase after this "rolled back".
    if (outcome === 'rollback') await endBranchHolders(env, gid, env.connectionLossWaitMs);
    if (env.commitProof === 'xid' && ref.xid === undefined && !env.readXids.has(gid)) {
      const read = await preparedXid(env, gid);
      if (read !== undefined) env.readXids.set(gid, read);
    }
    await onKeptOrPooled(env, gid, statement);
  } catch (e) {
    if (isTwopcError(e)) throw e;
    const c = classifyPgError(e);
    if (c.kind !== 'no-such-prepared') throw outcomeUnknown(env, verb, gid, e);
    const xid = ref.xid ?? env.readXids.get(gid);
    const committed = xid === undefined ? await markerVisibleOrUnknown(env, gid) : await committedByXid(env, gid, xid, verb, e).catch(forgetOnHazard(env, gid));
    // Judged: whatever follows (done, or a hazard no retry changes) needs the xid no more.
    env.readXids.delete(gid);
    if (outcome === 'commit' && !committed) {
      const proof = xid === undefined ? 'no marker row' : `its transaction ${parseProof(xid).xid} aborted`;
      throw new TwopcError(
        'heuristic-hazard',
        `participant "${env.participant}": ${verb} ${gid}: no such prepared transaction and ${proof}, although the decision is commit: the branch was rolled back or never prepared here`,
        { participant: env.participant, gid, sqlState: c.sqlState },
        { cause: e },
      );
    }
    if (outcome === 'rollback' && committed) {
      throw new TwopcError(
        'heuristic-hazard',
        `participant "${env.participant}": ${verb} ${gid}: the branch is committed (${xid === undefined ? 'its marker row is visible' : `its transaction ${parseProof(xid).xid} committed`}), although the decision is abort`,
        { participant: env.participant, gid, sqlState: c.sqlState },
        { cause: e },
      );
    }
  }
  env.inDoubt.delete(gid);
  env.readXids.delete(gid);
}

/** Runs `statement` on the connection kept since the branch's PREPARE, else on a pooled one. */
async function onKeptOrPooled(env: BranchEnv, gid: string, statement: string): Promise<void> {
  const kept = env.prepared?.take(gid);
  if (!kept) {
    await withPooledClient(env, (client) => client.query(statement));
    return;
  }
  try {
    await kept.client.query(statement);
    PreparedConnections.giveBack(kept);
  } catch (e) {
    PreparedConnections.giveBack(kept, classifyPgError(e).kind === 'connection-lost' ? asError(e) : undefined);
    throw e;
  }
}

/** A hazard is final (the engine stops retrying): the xid read for the branch is not needed again. */
function forgetOnHazard(env: BranchEnv, gid: string): (err: unknown) => never {
  return (err) => {
    if (isTwopcError(err, 'heuristic-hazard')) env.readXids.delete(gid);
    throw err;
  };
}

async function markerVisibleOrUnknown(env: BranchEnv, gid: string): Promise<boolean> {
  try {
    return await markerVisible(env, gid);
  } catch (e) {
    throw outcomeUnknown(env, 'look up the marker of', gid, e);
  }
}

function markerVisible(env: BranchEnv, gid: string): Promise<boolean> {
  return withPooledClient(env, async (client) => resultsOf(await client.query(sql.markerExists(env.schema), [gid]))[0].rows.length > 0);
}
