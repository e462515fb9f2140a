import type { TransferKind } from '../service-crash/bank-traffic';
import { seededRandom } from '../../harness/bank';

/** What clients were told, by transfer id (= transaction id), across every instance they called. */
export interface ClusterOutcomes {
  kinds: Map<string, TransferKind>;
  /** Commit answered 200 or 202: the transfer must be visible. */
  committed: Set<string>;
  /** Commit answered 409 (aborted), or abort answered 200: the transfer must not be visible. */
  aborted: Set<string>;
  /** Begun, but no outcome was ever acknowledged (calls unanswered, or 503 past the client's patience). */
  unknown: Set<string>;
  /** The instance (base URL) each transaction was begun on: its owner. */
  begunOn: Map<string, string>;
  /** Begun and still waiting for its outcome: the transactions in flight right now. */
  open: Set<string>;
  /** Every acknowledged commit: which instance answered it, and when. */
  commits: Array<{ id: string; begunOn: string; answeredBy: string; at: number }>;
  /** Answers none of the above expects ("commit 404 not-found" → count), for diagnostics. */
  odd: Map<string, number>;
  /** Calls answered 503 or not at all and asked again ("commit 503 owner-unavailable" → count). */
  retried: Map<string, number>;
}

export function newClusterOutcomes(): ClusterOutcomes {
  return { kinds: new Map(), committed: new Set(), aborted: new Set(), unknown: new Set(), begunOn: new Map(), open: new Set(), commits: [], odd: new Map(), retried: new Map() };
}

export interface ClusterTrafficOptions {
  /** Base URLs of the instances clients may call now (read before every call: the test drops one it kills or pauses). */
  instances(): readonly string[];
  token: string;
  /** Base URLs of the ledger services (ledger_a, ledger_b). */
  services: { a: string; b: string };
  accounts: number;
  workers: number;
  seed: number;
  outcomes: ClusterOutcomes;
  /** Stop beginning transfers (those begun are still finished). */
  stopped(): boolean;
  /** How long a client keeps retrying a commit or abort that goes unanswered or answers 503. Default 12 s. */
  patienceMs?: number;
}

interface Reply {
  status: number;
  code?: string;
  retryAfterMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Bank clients of a coordinator cluster: each transfer begins on a randomly
 * chosen instance, calls the ledger services (whose enlists reach the owner
 * through whichever instance they talk to), and commits — or aborts, when a
 * service call failed — on a randomly chosen instance, so requests for
 * transactions another instance owns are the rule. A commit or abort that
 * goes unanswered (its instance died) or answers 503 (owner unreachable,
 * fenced) is retried on a live instance until it gets an outcome or the
 * client runs out of patience (then its outcome is unknown).
 * Returns how many transfers were begun.
 */
export async function runClusterTraffic(o: ClusterTrafficOptions): Promise<number> {
  const random = seededRandom(o.seed);
  const patienceMs = o.patienceMs ?? 12_000;
  const out = o.outcomes;
  let begun = 0;
  const headers = { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' };
  const anyInstance = (): string | undefined => {
    const list = o.instances();
    return list.length === 0 ? undefined : list[Math.floor(random() * list.length)];
  };
  const post = async (url: string, body: unknown, extra: Record<string, string> = {}): Promise<Reply & { json?: unknown }> => {
    try {
      const res = await fetch(url, { method: 'POST', headers: { ...headers, ...extra }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      const code = (json as { code?: unknown } | undefined)?.code;
      const retryAfter = Number(res.headers.get('retry-after'));
      return {
        status: res.status,
        json,
        ...(typeof code === 'string' ? { code } : {}),
        ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
      };
    } catch {
      return { status: 0 };
    }
  };
  const count = (into: Map<string, number>, what: string, r: Reply) => {
    const key = `${what} ${r.status} ${r.code ?? ''}`.trim();
    into.set(key, (into.get(key) ?? 0) + 1);
  };

  /** Commits or aborts until an outcome is acknowledged, or patience runs out (unknown). */
  const finish = async (id: string, action: 'commit' | 'abort'): Promise<void> => {
    const deadline = Date.now() + patienceMs;
    while (Date.now() < deadline) {
      const at = anyInstance();
      if (!at) {
        await sleep(100);
        continue;
      }
      const r = await post(`${at}/v1/transactions/${id}/${action}`, {});
      if (action === 'commit' && (r.status === 200 || r.status === 202)) {
        out.committed.add(id);
        out.commits.push({ id, begunOn: out.begunOn.get(id)!, answeredBy: at, at: Date.now() });
        return;
      }
      if (action === 'commit' && r.status === 409 && (r.code === 'transaction-aborted' || r.code === 'state-conflict')) {
        out.aborted.add(id);
        return;
      }
      if (action === 'abort' && r.status === 200) {
        out.aborted.add(id);
        return;
      }
      if (r.status !== 0 && r.status !== 503) {
        count(out.odd, action, r);
        break;
      }
      // Unanswered (the instance died or was paused) or 503 (owner unreachable, fenced, not ready): ask again, maybe elsewhere.
      count(out.retried, action, r);
      await sleep(Math.min(r.retryAfterMs ?? 200, 500));
    }
    out.unknown.add(id);
  };

  const pick = () => 1 + Math.floor(random() * o.accounts);
  const worker = async () => {
    while (!o.stopped()) {
      const at = anyInstance();
      if (!at) {
        await sleep(100);
        continue;
      }
      const r = random();
      const kind: TransferKind = r < 0.7 ? 'cross' : r < 0.8 ? 'local-a' : r < 0.9 ? 'local-b' : 'vote-no';
      const amount = 1 + Math.floor(random() * 5);
      const begin = await post(`${at}/v1/transactions`, { timeoutMs: 3_000 });
      if (begin.status !== 201) {
        // Nothing was begun that this client knows of (unanswered, fenced, not ready): nothing to check.
        count(begin.status !== 0 && begin.status !== 503 ? out.odd : out.retried, 'begin', begin);
        await sleep(50);
        continue;
      }
      begun += 1;
      const id = (begin.json as { id: string }).id;
      out.kinds.set(id, kind);
      out.begunOn.set(id, at);
      out.open.add(id);
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
        if ((await post(`${service}/transfer`, body, tx)).status !== 200) {
          failed = true;
          break;
        }
      }
      await finish(id, failed ? 'abort' : 'commit');
      out.open.delete(id);
    }
  };
  await Promise.all(Array.from({ length: o.workers }, worker));
  return begun;
}
