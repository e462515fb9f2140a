import { isTxId, TransactionAbortedError, TwopcError } from './ports/protocol';
import type { TxSnapshot } from './ports/decision-log';
import type { EngineContext } from './engine-context';
import type { LiveTransaction } from './live-transaction';
import { statusFromSnapshot } from './transaction-status';

export function onlyBranchUnknown(txId: string): TwopcError {
  return new TwopcError('outcome-unknown', `transaction ${txId}: its only branch may have committed in one phase and its participant cannot be asked now; ask again`, { txId });
}

export function abortedError(tx: LiveTransaction): TransactionAbortedError {
  return new TransactionAbortedError(tx.id, tx.abortReason ?? { cause: 'aborted', message: 'transaction aborted' });
}

export function stateError(tx: LiveTransaction, action: string): TwopcError {
  if (tx.state === 'aborted') return abortedError(tx);
  if (tx.aborting) return new TwopcError('state-conflict', `cannot ${action} transaction ${tx.id}: it is being aborted`, { txId: tx.id, state: 'aborted' });
  return new TwopcError('state-conflict', `cannot ${action} transaction ${tx.id}: it is ${tx.state}`, { txId: tx.id, state: tx.state });
}

/** Why a call that needs a running transaction cannot have it: bad id, unknown, or already ended (409). */
export async function notRunning(ctx: EngineContext, txId: string, action: string): Promise<never> {
  const snapshot = await snapshotOrThrow(ctx, txId);
  const status = statusFromSnapshot(snapshot);
  throw new TwopcError('state-conflict', `cannot ${action} transaction ${txId}: it is ${status.state}`, { txId, state: status.state });
}

export async function snapshotOrThrow(ctx: EngineContext, txId: string): Promise<TxSnapshot> {
  if (!isTxId(txId)) throw new TwopcError('invalid-input', 'id must be a transaction id (UUID)', { field: 'id' });
  const snapshot = await ctx.log.get(txId);
  if (!snapshot) throw new TwopcError('not-found', `no transaction ${txId}`, { txId });
  return snapshot;
}

export function assertAccepting(ctx: EngineContext): void {
  const failure = ctx.log.failure;
  if (failure) throw failure;
  if (!ctx.ownership.holdsLease) throw new TwopcError('fenced', 'this coordinator instance holds no lease on the shared log right now (taken over, or the store unreachable); retry on another instance or shortly');
  if (ctx.state === 'ready') return;
  if (ctx.state === 'stopping' || ctx.state === 'stopped') throw new TwopcError('shutting-down', 'the coordinator is shutting down');
  throw new TwopcError('state-conflict', 'the coordinator has not finished recovery yet');
}
