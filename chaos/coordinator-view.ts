/** What the coordinator says of one transaction (`GET /v1/transactions/:id`). */
export type CoordinatorAnswer =
  | { found: true; state: string; decision: 'commit' | 'abort' | null; hazards: number }
  /** 404: never logged (a begin lost with unsynced data), or forgotten by compaction. */
  | { found: false }
  | { found: 'error'; error: string };

/** A transaction the coordinator still lists (live or unfinished). */
export interface UnfinishedTx {
  id: string;
  state: string;
  decision: string | null;
  hazards: Array<{ gid: string; detail: string }>;
}

interface StatusBody {
  id: string;
  state: string;
  decision: 'commit' | 'abort' | null;
  hazards?: Array<{ gid: string; detail: string }>;
}

/**
 * Asks the coordinator about every transaction, `concurrency` calls at a
 * time. Several instances (`api` a list): each question goes to the next one
 * in turn, so the answers come from the shared log through every instance.
 */
export async function readCoordinatorView(api: string | readonly string[], token: string, ids: readonly string[], concurrency = 16): Promise<Map<string, CoordinatorAnswer>> {
  const apis = typeof api === 'string' ? [api] : api;
  const answers = new Map<string, CoordinatorAnswer>();
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const n = next++;
      answers.set(ids[n], await askOne(apis[n % apis.length], token, ids[n]));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return answers;
}

async function askOne(api: string, token: string, id: string): Promise<CoordinatorAnswer> {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(`${api}/v1/transactions/${id}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
      if (res.status === 404) {
        await res.arrayBuffer();
        return { found: false };
      }
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
      const body = (await res.json()) as StatusBody;
      return { found: true, state: body.state, decision: body.decision, hazards: body.hazards?.length ?? 0 };
    } catch (e) {
      if (attempt >= 3) return { found: 'error', error: e instanceof Error ? e.message : String(e) };
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Every transaction the coordinator still lists: live ones, and unfinished ones in its log. Undefined if it cannot be asked. */
export async function listUnfinished(api: string, token: string): Promise<UnfinishedTx[] | undefined> {
  try {
    const res = await fetch(`${api}/v1/transactions?limit=1000`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
    if (res.status !== 200) {
      await res.arrayBuffer();
      return undefined;
    }
    const body = (await res.json()) as { transactions: StatusBody[] };
    return body.transactions.map((t) => ({ id: t.id, state: t.state, decision: t.decision, hazards: (t.hazards ?? []).map((h) => ({ gid: h.gid, detail: h.detail })) }));
  } catch {
    return undefined;
  }
}
