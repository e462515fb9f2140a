import { GID_PREFIX, type BankTopology } from './bank-topology';
import { listUnfinished, type UnfinishedTx } from './coordinator-view';
import { preparedLeft, type PreparedLeft } from './ledger-state';

/** Where the system stood when the wait for quiescence ended (early if only heuristic hazards were left). */
export interface Quiescence {
  /** Nothing prepared left anywhere, and the coordinator lists no transaction. */
  quiescent: boolean;
  waitedMs: number;
  prepared: PreparedLeft[];
  /** What the coordinator still listed (undefined: it could not be asked). */
  unfinished: UnfinishedTx[] | undefined;
}

/**
 * Waits, at most `timeoutMs`, until recovery, phase-2 retries, the
 * coordinator's sweeps and the services' self-sweeps have ended every
 * transaction: no prepared transaction of ours in any cluster, and nothing
 * live or unfinished at the coordinator. Call it once every fault is healed.
 */
export async function waitForQuiescence(t: BankTopology, timeoutMs: number, log: (message: string) => void): Promise<Quiescence> {
  const started = Date.now();
  let lastReport = started;
  for (;;) {
    const prepared = await preparedLeft(t, GID_PREFIX).catch(() => [{ cluster: -1, gid: '(a cluster could not be asked)' }]);
    const unfinished = await listUnfinished(t.api, t.token);
    const quiescent = prepared.length === 0 && unfinished !== undefined && unfinished.length === 0;
    // A heuristic hazard waits for an operator: when nothing else is left, waiting longer changes nothing.
    const stuck = prepared.length === 0 && unfinished !== undefined && unfinished.length > 0 && unfinished.every((u) => u.hazards.length > 0);
    const waitedMs = Date.now() - started;
    if (quiescent || stuck || waitedMs > timeoutMs) return { quiescent, waitedMs, prepared, unfinished };
    if (Date.now() - lastReport > 5_000) {
      lastReport = Date.now();
      log(`waiting for quiescence (${Math.round(waitedMs / 1000)} s): ${prepared.length} prepared, ${unfinished?.length ?? '?'} listed by the coordinator`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}
