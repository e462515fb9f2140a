import type { ModeTotals } from './mode-session';

/** CPU per transfer of the bench process plus the two PostgreSQL servers, ms; undefined where not metered. */
function cpuPerTransfer(t: ModeTotals): number | undefined {
  return t.postgresCpuMsPerTransfer === undefined ? undefined : t.processCpuMsPerTransfer + t.postgresCpuMsPerTransfer;
}

/**
 * What each mode costs in CPU per transfer: this Node process (the bench
 * driver, and the engine in the engine modes) and the two clusters' servers.
 * On a machine shared with other work, throughput moves with their load; CPU
 * per transfer of our own processes does much less, and once the cores are
 * saturated throughput is inversely proportional to it. `raw/mode` is raw's
 * CPU per transfer divided by the mode's: the throughput ratio a saturated
 * machine of our own would show.
 */
export function cpuTable(totals: ModeTotals[]): string {
  const raw = totals.find((t) => t.name === 'raw');
  const rawCpu = raw && cpuPerTransfer(raw);
  const header = ['mode', 'Node ms', 'PostgreSQL ms', 'total ms', 'raw/mode'];
  const rows = totals.map((t) => {
    const total = cpuPerTransfer(t);
    return [
      t.name,
      t.processCpuMsPerTransfer.toFixed(3),
      t.postgresCpuMsPerTransfer?.toFixed(3) ?? '-',
      total?.toFixed(3) ?? '-',
      rawCpu !== undefined && total ? (rawCpu / total).toFixed(3) : '-',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return ['CPU per transfer (this process + both PostgreSQL servers)', line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** `<mode>_cpu_vs_raw` for every mode but raw (see cpuTable), for the JSON line. */
export function cpuJson(totals: ModeTotals[]): Record<string, number> {
  const raw = totals.find((t) => t.name === 'raw');
  const rawCpu = raw && cpuPerTransfer(raw);
  const out: Record<string, number> = {};
  if (rawCpu === undefined) return out;
  for (const t of totals) {
    const total = cpuPerTransfer(t);
    if (t.name !== 'raw' && total) out[`${t.name}_cpu_vs_raw`] = Math.round((rawCpu / total) * 1000) / 1000;
  }
  return out;
}
