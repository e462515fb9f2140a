import { request } from 'undici';

interface SumCount {
  sum: number;
  count: number;
}

const LINE = /^(twopc_http_request_seconds|twopc_phase_seconds)_(sum|count)\{([^}]*)\} (\S+)$/;

function labelsOf(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
}

/**
 * What a `twopc serve` process says it spent, from its Prometheus `/metrics`:
 * server time per API route (summed over statuses) and per protocol phase.
 * Counted over its whole life, warm-ups included: means, not totals, are the point.
 */
export async function coordinatorTimings(baseUrl: string): Promise<string[]> {
  const res = await request(`${baseUrl}/metrics`);
  const text = await res.body.text();
  const byKey = new Map<string, SumCount>();
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const labels = labelsOf(m[3]);
    const key = m[1] === 'twopc_phase_seconds' ? `phase ${labels.phase}` : `${labels.method} ${labels.route}`;
    const entry = byKey.get(key) ?? { sum: 0, count: 0 };
    if (m[2] === 'sum') entry.sum += Number(m[4]);
    else entry.count += Number(m[4]);
    byKey.set(key, entry);
  }
  return [...byKey]
    .filter(([, e]) => e.count > 0)
    .map(([key, e]) => `coordinator ${key}: ${e.count} × ${((e.sum * 1000) / e.count).toFixed(3)} ms mean (served; whole run)`);
}
