import type { Vote } from '../branch-types';
import { formatProof } from './commit-proof';
import type { PostgresVote } from './commit-proof';
import type { HeldBranch } from './held-branch';
import { classifyPgError } from './postgres-errors';
import type { BranchEnv } from './postgres-outcomes';
import { asError, failureOf, withState } from './postgres-outcomes';
import { resultsOf } from './postgres-pool';
import * as sql from './postgres-sql';

/**
 * Phase 1 on the branch's held connection; gives the connection back in
 * every case. Never throws: every failure is a "no".
 *
 * Round trips: a branch whose statements included a write needs one
 * (marker + PREPARE). A branch of reads only needs two (is there an xid?
 * then COMMIT) and leaves no prepared state and no WAL flush behind.
 */
export async function prepareHeld(env: BranchEnv, held: HeldBranch): Promise<PostgresVote> {
  if (held.connectionLost) {
    // Nothing was sent, so nothing can have been prepared; the server rolls
    // the branch back when it notices the connection is gone.
    held.release(held.connectionLost);
    held.end('rolled-back', 'the connection was lost before PREPARE');
    return { vote: 'no', reason: `the branch's connection was lost before PREPARE: ${held.connectionLost.message}` };
  }
  try {
    const client = held.connection();
    if (!held.mayHaveWritten) {
      // The tags say reads only, but a SELECT can write (a function, a
      // data-modifying CTE): the xid decides.
      const wrote = resultsOf(await client.query(sql.probeWrites(!held.inOpenBlock()))).at(-1)?.rows[0]?.wrote;
      if (wrote === false) return await commitReadOnly(held);
    }
    // One round trip: marker (only if the branch wrote) or the branch's xid,
    // then PREPARE. The in-block guard goes first unless the connection's
    // status says the block is open (checked and sent with no await between,
    // so nothing can run in between); outside a block it fails, and in a
    // failed block it fails too. PREPARE's own tag is checked anyway, since
    // PostgreSQL answers a PREPARE in a failed block with ROLLBACK, no error.
    const byXid = env.commitProof === 'xid';
    const guarded = !held.inOpenBlock();
    const text = byXid ? sql.prepareBranchXid(held.gid, env.histories.columns(client), guarded) : sql.prepareBranch(env.schema, held.gid, held.ref.txId, guarded);
    const [proof, prepare] = resultsOf(await client.query(text)).slice(-2);
    if (prepare?.command !== 'PREPARE') {
      const message = `PREPARE answered ${prepare?.command ?? 'nothing'}: the transaction block had failed`;
      await held.rollbackAndRelease();
      held.end('rolled-back', message);
      return { vote: 'no', ...failureOf({ kind: 'wrong-state', message }, held.lastStatementError, true) };
    }
    const xid: unknown = byXid ? proof?.rows[0]?.xid : undefined;
    if (byXid ? xid === null || xid === undefined : proof?.rowCount === 0) {
      // Prepared without an xid before it (write statements that changed no
      // row): finish it at once on the same connection; it stays out of phase 2.
      await client.query(sql.commitPrepared(held.gid));
      held.release();
      held.end('committed');
      return { vote: 'read-only' };
    }
    const cluster = byXid ? env.histories.fromRow(client, proof?.rows[0]) : undefined;
    if (byXid && cluster === undefined) {
      // Never happens with a server that ran the text; without a history the xid proves nothing.
      const message = 'PREPARE\'s round trip gave no cluster history for the xid';
      await client.query(sql.rollbackPrepared(held.gid));
      held.release();
      held.end('rolled-back', message);
      return { vote: 'no', reason: message };
    }
    if (env.prepared) {
      // Kept for phase 2 (COMMIT/ROLLBACK PREPARED runs on any idle session): no second checkout.
      env.prepared.keep(held.gid, client, env.onConnectionError ?? (() => undefined));
      held.detach();
    } else {
      held.release();
    }
    held.end('prepared');
    // The xid goes with the vote into the commit decision: phase 2 asks pg_xact_status with it.
    return byXid ? { vote: 'yes', xid: formatProof(xid, cluster) } : { vote: 'yes' };
  } catch (e) {
    return prepareFailed(env, held, e);
  }
}

async function commitReadOnly(held: HeldBranch): Promise<Vote> {
  const [commit] = resultsOf(await held.connection().query(sql.commitLocal()));
  held.release();
  if (commit?.command !== 'COMMIT') {
    held.end('rolled-back', `COMMIT answered ${commit?.command ?? 'nothing'}`);
    return { vote: 'no', reason: `the read-only branch's COMMIT answered ${commit?.command ?? 'nothing'}` };
  }
  held.end('committed');
  return { vote: 'read-only' };
}

async function prepareFailed(env: BranchEnv, held: HeldBranch, err: unknown): Promise<Vote> {
  const c = classifyPgError(err);
  if (c.kind === 'connection-lost') {
    // The statement may have reached the server: the old backend may yet
    // complete the PREPARE. The abort that follows this "no" rolls it back by
    // GID, after waiting for that backend to be gone (see finishPrepared).
    env.inDoubt.set(held.gid, held.backend);
    held.release(asError(err));
    held.end('rolled-back', `the connection was lost during PREPARE: ${c.message}`);
    return { vote: 'no', ...withState(`the connection was lost during PREPARE (it may have taken effect; the branch is rolled back by GID): ${c.message}`, c.sqlState) };
  }
  // The server answered with an error, so this call prepared nothing (a
  // failing PREPARE aborts its transaction; after a failed read-only COMMIT
  // PREPARED the abort's ROLLBACK PREPARED ends the branch). End any failed
  // block so the connection goes back to the pool clean.
  await held.rollbackAndRelease();
  held.end('rolled-back', `PREPARE failed: ${c.message}`);
  return { vote: 'no', ...failureOf(c, held.lastStatementError) };
}
