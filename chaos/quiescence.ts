import { GID_PREFIX, type BankTopology } from './bank-topology';
import { listUnfinished, type UnfinishedTx } from './coordinator-view';
import { preparedLeft, type PreparedLeft } from './ledger-state';
import { leaseProblems } from './shared-log';

/** Where the system stood when the wait for quiescence ended (early if only heuristic hazards were left). */
export interface Quiescence {
  /** Nothing prepared left anywhere, and the coordinator lists no transaction. */
  quiescent: boolean;
  waitedMs: number;
  prepared: PreparedLeft[];
  /** What the coordinator still listed (undefined: it could not be asked); with several instances, what any of them listed. */
  unfinished: UnfinishedTx[] | undefined;
  /** A shared log: transactions it holds not completed, read from the store (undefined: it could not be read). */
  storeUnfinished?: string[] | undefined;
  /** A shared log: leases of dead processes nobody took over (undefined: they could not be read). */
  leaseProblems?: string[] | undefined;
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
    const unfinished = await listEverywhere(t);
    const shared = t.sharedLog ? await sharedLogState(t) : undefined;
    const sharedDone = !t.sharedLog || (shared?.storeUnfinished?.length === 0 && shared.leaseProblems?.length === 0);
    const quiescent = prepared.length === 0 && unfinished !== undefined && unfinished.length === 0 && sharedDone;
    // A heuristic hazard waits for an operator: when nothing else is left, waiting longer changes nothing.
    const stuck = prepared.length === 0 && unfinished !== undefined && unfinished.length > 0 && unfinished.every((u) => u.hazards.length > 0);
    const waitedMs = Date.now() - started;
    if (quiescent || stuck || waitedMs > timeoutMs) return { quiescent, waitedMs, prepared, unfinished, ...(shared ?? {}) };
    if (Date.now() - lastReport > 5_000) {
      lastReport = Date.now();
      const store = shared ? `; shared log: ${shared.storeUnfinished?.length ?? '?'} unfinished, ${shared.leaseProblems?.length ?? '?'} lease(s) of dead processes not taken over` : '';
      log(`waiting for quiescence (${Math.round(waitedMs / 1000)} s): ${prepared.length} prepared, ${unfinished?.length ?? '?'} listed by the coordinator${t.multiInstance ? ' instances' : ''}${store}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** What every coordinator instance lists, without duplicates; undefined if one could not be asked. */
async function listEverywhere(t: BankTopology): Promise<UnfinishedTx[] | undefined> {
  const lists = await Promise.all(t.coordinators.map((c) => listUnfinished(c.api, t.token)));
  if (lists.some((l) => l === undefined)) return undefined;
  const byId = new Map<string, UnfinishedTx>();
  for (const list of lists) for (const u of list!) byId.set(u.id, u);
  return [...byId.values()];
}

/** The shared log read directly: unfinished transactions, and leases of dead processes not taken over. */
async function sharedLogState(t: BankTopology): Promise<Pick<Quiescence, 'storeUnfinished' | 'leaseProblems'>> {
  try {
    const state = await t.sharedLog!.read();
    const running = new Set(t.coordinators.filter((c) => c.process.running).map((c) => c.name));
    return { storeUnfinished: state.unfinished, leaseProblems: leaseProblems(state, running) };
  } catch {
    return { storeUnfinished: undefined, leaseProblems: undefined };
  }
}
