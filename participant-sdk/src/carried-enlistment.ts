import { mintCarriedBranchId, signRegistration, type CarriedRegistration } from './carried-registration';
import { armTimeout, workInBranch, type EnlistmentDeps } from './enlistment';
import { TwopcError } from './errors';
import { buildGid, isTxId } from './gid';
import type { BranchClient } from './postgres';
import { BATCH_FEATURE } from './wire';

/** What a branch opened under carried registration answers: the work's result, and the registration to hand the application. */
export interface CarriedResult<T> {
  result: T;
  registration: CarriedRegistration;
}

/**
 * Carried registration (docs/protocol.md): opens this service's branch of
 * `txId` without calling the coordinator, runs the work in it and holds it,
 * and returns a registration signed with the participant secret. The branch
 * is registered only by the commit (or abort) that carries the registration,
 * so it is never prepared on its own (no eager mode): only the coordinator's
 * PREPARE, sent after it recorded the registration, prepares it. Its
 * rollback (a carried abort) ends it at once. A branch whose registration
 * never reaches a commit or an abort is rolled back by its timeout (the
 * coordinator's carried timeout plus heldGraceMs): it is not prepared, so a
 * local rollback is safe, and a late PREPARE then votes no.
 */
export async function runCarried<T>(deps: EnlistmentDeps & { secret: string }, txId: string, work: (client: BranchClient) => Promise<T>): Promise<CarriedResult<T>> {
  if (!isTxId(txId)) throw new TwopcError('invalid-input', `txId must be a lower-case UUID (got ${JSON.stringify(txId)})`, { field: 'txId' });
  const offer = (await deps.coordinator.capabilities()).carriedRegistration;
  if (!offer) throw new TwopcError('state-conflict', 'the coordinator does not offer carried registration: the application must begin the transaction, and this service enlist', { field: 'carried' });
  // The self-sweep looks only for its own prefix: a branch of another one would never be swept.
  if (offer.gidPrefix !== deps.gidPrefix) {
    throw new TwopcError('invalid-config', `the coordinator's gidPrefix is "${offer.gidPrefix}" but this participant's is "${deps.gidPrefix}"`, { field: 'gidPrefix' });
  }
  const branchId = mintCarriedBranchId();
  const gid = buildGid(deps.gidPrefix, txId, branchId);
  const ref = Object.freeze({ txId, branchId, gid, participant: deps.name, url: deps.publicUrl });
  const entry = deps.book.open(ref, Date.now() + offer.timeoutMs);
  armTimeout(deps, entry, entry.expiresAt + deps.heldGraceMs);
  try {
    const result = await workInBranch(deps, entry, work);
    return { result, registration: signRegistration(deps.secret, txId, { participant: deps.name, url: deps.publicUrl, branchId, gid, accepts: [BATCH_FEATURE] }) };
  } finally {
    entry.settle();
  }
}
