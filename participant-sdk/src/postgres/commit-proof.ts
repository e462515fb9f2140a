import { TwopcError, isTwopcError } from '../errors';
import type { BranchRef, Vote } from '../branch-types';
import { withPooledClient } from './postgres-connection';
import { classifyPgError } from './postgres-errors';
import type { BranchEnv } from './postgres-outcomes';
import { resultsOf } from './postgres-pool';
import * as sql from './postgres-sql';
import { xactStatus } from './xid-proof-sql';

// pg_xact_status's answers for an xid this server never assigned: 22023 "transaction ID … is in the
// future", 22003 a value out of xid8's range.
const NOT_THIS_SERVERS_XID = new Set(['22023', '22003']);

/**
 * A vote of this adapter: under commitProof `xid`, a yes carries the branch's
 * proof, `<system identifier>.<timeline>:<xid8>` (see formatProof).
 */
export type PostgresVote = Vote | { vote: 'yes'; xid: string };

/** A branch as phase 2 names it: with the proof its yes vote carried, when the caller has it (commitProof `xid`). */
export type ProvenBranchRef = BranchRef & { xid?: string };

/** A branch's transaction id, and the cluster history it belongs to (absent in a proof of an older version: a bare xid). */
export interface XidProof {
  xid: string;
  cluster?: string;
}

/**
 * What a yes vote carries: `<cluster>:<xid>`. The xid alone would name a
 * transaction of whatever cluster answers later (a promoted standby that never
 * got the PREPARE reuses it for another transaction): the cluster history
 * ties it to the one that prepared the branch.
 */
export function formatProof(xid: unknown, cluster: unknown): string {
  return `${String(cluster)}:${String(xid)}`;
}

/** Reads a proof: `<cluster>:<xid>`, or a bare xid (a decision of an older version). */
export function parseProof(proof: string): XidProof {
  const at = proof.lastIndexOf(':');
  return at < 0 ? { xid: proof } : { xid: proof.slice(at + 1), cluster: proof.slice(0, at) };
}

/**
 * What the commit log says of a branch whose COMMIT/ROLLBACK PREPARED found
 * no prepared transaction (42704): true committed, false rolled back. Never a
 * guess: `in progress` (a PREPARE still running in some backend: it cannot be
 * finished yet) is `outcome-unknown`, so the engine retries; no status (the
 * xid is older than the commit log keeps) or an xid the server refuses (in
 * the future: not this server's branch) is a heuristic hazard.
 */
export async function committedByXid(env: BranchEnv, gid: string, proof: string, verb: string, cause: unknown): Promise<boolean> {
  const { xid, cluster } = parseProof(proof);
  let status: unknown;
  let answering: unknown;
  try {
    const row = await withPooledClient(env, async (client) => resultsOf(await client.query(xactStatus(), [xid, cluster ?? null]))[0].rows[0]);
    status = row?.status;
    answering = row?.cluster;
  } catch (e) {
    // Only the server's own word that this xid is not one of its transactions is final. Anything
    // else (no connection, too many clients, starting up, a statement timeout or cancel, a
    // privilege) says nothing of the branch: the engine asks again.
    const c = classifyPgError(e);
    if (isTwopcError(e) || c.sqlState === undefined || !NOT_THIS_SERVERS_XID.has(c.sqlState)) {
      const detail = { participant: env.participant, gid, xid, ...(c.sqlState ? { sqlState: c.sqlState } : {}) };
      throw new TwopcError('outcome-unknown', `participant "${env.participant}": ${verb} ${gid}: no such prepared transaction, and the status of its transaction ${xid} cannot be read now (${c.message}); retry`, detail, { cause: e });
    }
    throw hazard(env, gid, `${verb} ${gid}: no such prepared transaction, and PostgreSQL cannot say what became of its transaction ${xid}: ${c.message}`, c.sqlState, e);
  }
  if (cluster !== undefined && answering !== cluster) {
    throw hazard(
      env,
      gid,
      `${verb} ${gid}: no such prepared transaction, and the database answering is not the history that prepared it (cluster ${cluster}, now ${String(answering)}: ` +
        'a failover, a restore or another server since), so its commit log cannot say what became of the branch',
      undefined,
      cause,
    );
  }
  if (status === 'committed') return true;
  if (status === 'aborted') return false;
  if (status === 'in progress') {
    throw new TwopcError(
      'outcome-unknown',
      `participant "${env.participant}": ${verb} ${gid}: no such prepared transaction yet, and its transaction ${xid} is still in progress (its PREPARE has not finished); retry`,
      { participant: env.participant, gid, xid },
      { cause },
    );
  }
  throw hazard(env, gid, `${verb} ${gid}: no such prepared transaction, and the commit log no longer holds the status of its transaction ${xid} (too old)`, undefined, cause);
}

/** The proof (see formatProof) of a prepared branch, or undefined when it is not prepared here (see sql.preparedXid). */
export async function preparedXid(env: BranchEnv, gid: string): Promise<string | undefined> {
  return withPooledClient(env, async (client) => {
    const row = resultsOf(await client.query(sql.preparedXid(), [gid]))[0].rows[0];
    return row?.xid === undefined || row.xid === null ? undefined : formatProof(row.xid, row.cluster);
  });
}

function hazard(env: BranchEnv, gid: string, detail: string, sqlState: string | undefined, cause: unknown): TwopcError {
  return new TwopcError('heuristic-hazard', `participant "${env.participant}": ${detail}`, { participant: env.participant, gid, ...(sqlState ? { sqlState } : {}) }, { cause });
}
