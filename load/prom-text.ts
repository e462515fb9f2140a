/**
 * Sums of the samples of each metric in a Prometheus text exposition
 * (labels summed over; `name{outcome="commit"}` is also kept by its full
 * series name). Enough for the handful of gauges and counters the report reads.
 */
export function parsePromText(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const series = line.slice(0, space);
    const value = Number(line.slice(space + 1));
    if (!Number.isFinite(value)) continue;
    const brace = series.indexOf('{');
    const name = brace < 0 ? series : series.slice(0, brace);
    out.set(name, (out.get(name) ?? 0) + value);
    if (brace >= 0) out.set(series, value);
  }
  return out;
}
