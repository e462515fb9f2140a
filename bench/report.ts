import type { ModeSession, ModeTotals } from './mode-session';

const BASELINES = ['raw', 'local'] as const;
/** The services modes' own baseline: the same processes and client, each service committing locally. */
const SERVICES_BASELINE = 'http-local';

export interface ModeSummary {
  tps: number;
  p50: number;
  p99: number;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function summary(t: ModeTotals): ModeSummary {
  return { tps: round((t.transfers * 1000) / t.elapsedMs, 1), p50: round(t.latencies.percentile(50), 2), p99: round(t.latencies.percentile(99), 2) };
}

/**
 * The last line of output: every mode's summary, then `<mode>_vs_raw` and
 * `<mode>_vs_local` (tps ratios) for every mode that is not a baseline, and
 * `<mode>_vs_http_local` for every services mode (`http`, `http-hops`).
 */
export function resultJson(totals: ModeTotals[]): Record<string, ModeSummary | number> {
  const out: Record<string, ModeSummary | number> = {};
  const summaries = new Map(totals.map((t) => [t.name, summary(t)]));
  for (const [name, s] of summaries) out[name] = s;
  for (const [name, s] of summaries) {
    if ((BASELINES as readonly string[]).includes(name)) continue;
    for (const base of BASELINES) {
      const b = summaries.get(base);
      if (b && b.tps > 0) out[`${name}_vs_${base}`] = round(s.tps / b.tps, 3);
    }
    const services = summaries.get(SERVICES_BASELINE);
    if (name.startsWith('http') && name !== SERVICES_BASELINE && services && services.tps > 0) out[`${name}_vs_http_local`] = round(s.tps / services.tps, 3);
  }
  return out;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function resultTable(totals: ModeTotals[]): string {
  const raw = totals.find((t) => t.name === 'raw');
  const rawTps = raw ? (raw.transfers * 1000) / raw.elapsedMs : Number.NaN;
  const rows = totals.map((t) => {
    const s = summary(t);
    return [t.name, String(t.transfers), s.tps.toFixed(1), s.p50.toFixed(2), s.p99.toFixed(2), Number.isFinite(rawTps) ? (s.tps / rawTps).toFixed(3) : '-', String(t.errors), t.roundTps.map((x) => x.toFixed(0)).join(' / ')];
  });
  return table(['mode', 'transfers', 'tps', 'p50 ms', 'p99 ms', 'vs raw', 'errors', 'tps per round'], rows);
}

/**
 * --profile: per mode, how often each step ran per measured transfer (a
 * statement = one round trip) and what it cost. Steps overlap (phases contain
 * statements; parallel branches run at once), so the ms columns do not add up.
 */
export function profileReport(sessions: ModeSession[]): string {
  const parts: string[] = [];
  for (const session of sessions) {
    if (!session.tally) continue;
    const totals = session.totals();
    const transfers = totals.transfers;
    const rows = session.tally.rows().map((r) => [r.kind, (r.count / transfers).toFixed(2), (r.totalMs / r.count).toFixed(3), (r.totalMs / transfers).toFixed(3)]);
    const busy = totals.machineBusy === undefined ? '' : `, machine CPU ${(totals.machineBusy * 100).toFixed(0)}% busy`;
    parts.push(`profile: ${session.mode.name} (${transfers} measured transfers; Node CPU ${totals.processCpuMsPerTransfer.toFixed(3)} ms per transfer${busy})`);
    parts.push(table(['step', 'per transfer', 'mean ms', 'ms per transfer'], rows));
    for (const note of session.runner.profileNotes?.() ?? []) parts.push(`  ${note}`);
    parts.push('');
  }
  return parts.join('\n');
}
