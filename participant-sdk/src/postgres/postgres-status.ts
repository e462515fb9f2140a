import { validateGid } from '../gid';
import type { ParticipantBranchState } from '../branch-types';
import { endBranchHolders, ensureOldBackendGone, withPooledClient } from './postgres-connection';
import type { BranchEnv } from './postgres-outcomes';
import { outcomeUnknown } from './postgres-outcomes';
import type { PostgresPoolClient } from './postgres-pool';
import { resultsOf } from './postgres-pool';
import * as sql from './postgres-sql';
import { parseProof } from './commit-proof';

/**
 * What the database says of a branch this process does not hold: `prepared`,
 * `committed` (its marker is visible), or `unknown` (never prepared, rolled
 * back, or read-only: none left a trace). Recovery relies on it to tell a
 * one-phase commit that happened from one that did not, so no backend may
 * still hold the branch when the answer is read:
 * - a connection this process lost: its old backend is waited for (and ended);
 * - a branch another process holds (an SDK replica behind the same publicUrl,
 *   another coordinator, a process paused or cut off): its tagged backend is
 *   ended, idle in transaction or in the middle of PREPARE or COMMIT, and
 *   waited for (see endBranchHolders). A branch another process still holds
 *   therefore ends here, rolled back: asking its state is only ever done to
 *   decide it.
 */
export async function branchStatus(env: BranchEnv, gidInput: string, xid?: string): Promise<ParticipantBranchState> {
  const gid = validateGid(gidInput);
  try {
    const backend = env.inDoubt.get(gid);
    if (backend) await ensureOldBackendGone(env, backend, env.connectionLossWaitMs);
    await endBranchHolders(env, gid, env.connectionLossWaitMs);
    return await withPooledClient(env, (client) => readState(env, client, gid, xid));
  } catch (e) {
    throw outcomeUnknown(env, 'learn the state of', gid, e);
  }
}

/**
 * What the database records of a branch, without ending anything: `prepared`,
 * `committed` (its marker is visible) or `unknown`. Final only when no backend
 * can still be running a statement of the branch (see branchStatus).
 */
export async function recordedState(env: BranchEnv, gidInput: string, xid?: string): Promise<'prepared' | 'committed' | 'unknown'> {
  const gid = validateGid(gidInput);
  try {
    return await withPooledClient(env, (client) => readState(env, client, gid, xid));
  } catch (e) {
    throw outcomeUnknown(env, 'learn the state of', gid, e);
  }
}

async function readState(env: BranchEnv, client: PostgresPoolClient, gid: string, xid?: string): Promise<'prepared' | 'committed' | 'unknown'> {
  const [prepared, committed] = resultsOf(await client.query(sql.branchState(env.schema, gid, xid === undefined ? undefined : parseProof(xid))));
  if (prepared?.rows[0]?.prepared === true) return 'prepared';
  return committed?.rows[0]?.committed === true ? 'committed' : 'unknown';
}
