import { seededRandom } from '../../harness/bank';

/** A cross-ledger transfer (two branches, 2PC), a local one (one branch: one-phase commit), or a cross one that votes no. */
export type TransferKind = 'cross' | 'local-a' | 'local-b' | 'vote-no';

/** What clients were told, by transfer id (= transaction id). */
export interface Outcomes {
  kinds: Map<string, TransferKind>;
  /** The coordinator answered 200 or 202 to commit: the transfer must be visible. */
  committed: Set<string>;
  /** The coordinator answered 409 to commit, or 200 to abort: the transfer must not be visible. */
  aborted: Set<string>;
}

export interface TrafficOptions {
  api: string;
  token: string;
  /** Base URLs of the ledger services (ledger_a, ledger_b). */
  services: { a: string; b: string };
  accounts: number;
  workers: number;
  seed: number;
  outcomes: Outcomes;
  /** Stop (the coordinator died) — checked between calls. */
  stopped(): boolean;
}

/** The coordinator (or a service) did not answer at all: its outcome is unknown to this client. */
class Unanswered extends Error {}

/**
 * Bank clients over HTTP: each worker begins a transaction at the
 * coordinator, calls the ledger services with the `twopc-transaction`
 * header, and commits (or aborts when a service call failed), until a call
 * to the coordinator goes unanswered (it was killed) or `stopped()`.
 * Returns how many transfers were attempted.
 */
export async function runTraffic(o: TrafficOptions): Promise<number> {
  const random = seededRandom(o.seed);
  let attempts = 0;
  const headers = { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' };
  const call = async (url: string, body: unknown, extra: Record<string, string> = {}): Promise<number> => {
    try {
      const res = await fetch(url, { method: 'POST', headers: { ...headers, ...extra }, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
      await res.arrayBuffer();
      return res.status;
    } catch {
      throw new Unanswered();
    }
  };
  const pick = () => 1 + Math.floor(random() * o.accounts);
  const worker = async () => {
    while (!o.stopped()) {
      const r = random();
      const kind: TransferKind = r < 0.7 ? 'cross' : r < 0.8 ? 'local-a' : r < 0.9 ? 'local-b' : 'vote-no';
      const amount = 1 + Math.floor(random() * 5);
      attempts += 1;
      try {
        const begin = await fetch(`${o.api}/v1/transactions`, { method: 'POST', headers, body: JSON.stringify({ timeoutMs: 3_000 }) }).catch(() => {
          throw new Unanswered();
        });
        if (begin.status !== 201) throw new Unanswered();
        const id = ((await begin.json()) as { id: string }).id;
        o.outcomes.kinds.set(id, kind);
        const tx = { 'twopc-transaction': id };
        // Ledger A is always locked first: PostgreSQL cannot see a deadlock that spans two databases.
        const from = pick();
        const to = from === o.accounts ? 1 : from + 1;
        const calls: Array<[string, unknown]> =
          kind === 'local-a' || kind === 'local-b'
            ? [[kind === 'local-a' ? o.services.a : o.services.b, { id, legs: [{ account: from, delta: -amount }, { account: to, delta: amount }] }]]
            : [
                [o.services.a, { id, legs: [{ account: pick(), delta: -amount }] }],
                [o.services.b, { id, legs: [{ account: pick(), delta: amount }], sabotage: kind === 'vote-no' }],
              ];
        let failed = false;
        for (const [service, body] of calls) {
          const status = await call(`${service}/transfer`, body, tx).catch(() => 0);
          if (status !== 200) {
            failed = true;
            break;
          }
        }
        if (failed) {
          if ((await call(`${o.api}/v1/transactions/${id}/abort`, {})) === 200) o.outcomes.aborted.add(id);
          continue;
        }
        const status = await call(`${o.api}/v1/transactions/${id}/commit`, {});
        if (status === 200 || status === 202) o.outcomes.committed.add(id);
        else if (status === 409) o.outcomes.aborted.add(id);
      } catch (e) {
        if (e instanceof Unanswered) return;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: o.workers }, worker));
  return attempts;
}
