import type { EngineContext } from './engine-context';

/**
 * When the oldest transaction in doubt here began (epoch ms), or undefined
 * when none is: past `active` and not completed — preparing, or decided with
 * phase 2 unfinished — among the transactions live here and those whose
 * phase 2 this process drives (recovery, sweeps, taken-over leases).
 *
 * A metrics scrape asks, so it must stay cheap whatever the load: live
 * transactions are kept in the order they began, so the walk stops at the
 * first one in doubt (at worst it passes the active ones: no allocation, no
 * sort, no log read); a transaction driven but not live (few: recovery runs
 * at most `recoveryConcurrency` at once) is dated by one read of its record.
 */
export async function oldestInDoubtSince(ctx: EngineContext): Promise<number | undefined> {
  // A log that refuses writes may hold decisions that never reached the disk: the age is unknown then.
  if (ctx.log.failure) throw ctx.log.failure;
  let oldest: number | undefined;
  for (const tx of ctx.live.values()) {
    if (tx.state === 'active' || tx.state === 'completed') continue;
    oldest = tx.createdAt;
    break;
  }
  for (const txId of [...ctx.phaseTwo.driving()]) {
    if (ctx.live.has(txId)) continue;
    const snapshot = await ctx.log.get(txId);
    if (snapshot && !snapshot.completed && (oldest === undefined || snapshot.createdAt < oldest)) oldest = snapshot.createdAt;
  }
  return oldest;
}
