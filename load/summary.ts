import { Histogram } from './histogram';
import { Timeline, type PhaseTotals, type Second } from './timeline';

export const MiB = (kib: number | undefined): number | undefined => (kib === undefined ? undefined : Math.round((kib / 1024) * 10) / 10);
export const round = (x: number | undefined, digits = 1): number | undefined => (x === undefined || !Number.isFinite(x) ? undefined : Math.round(x * 10 ** digits) / 10 ** digits);

export function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** RSS over some seconds, MiB. */
export function rssOf(seconds: Second[]): { startMiB?: number; minMiB?: number; maxMiB?: number; endMiB?: number } {
  const rss = seconds.map((s) => s.rssKiB).filter((x): x is number => x !== undefined);
  if (rss.length === 0) return {};
  return { startMiB: MiB(rss[0]), minMiB: MiB(Math.min(...rss)), maxMiB: MiB(Math.max(...rss)), endMiB: MiB(rss.at(-1)) };
}

/** Least-squares slope of RSS over the seconds, MiB per minute (is it still climbing?). */
export function rssSlopeMiBPerMin(seconds: Second[]): number | undefined {
  const pts = seconds.filter((s) => s.rssKiB !== undefined).map((s) => [s.epoch, s.rssKiB! / 1024] as const);
  if (pts.length < 5) return undefined;
  const mx = pts.reduce((a, p) => a + p[0], 0) / pts.length;
  const my = pts.reduce((a, p) => a + p[1], 0) / pts.length;
  const num = pts.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0);
  const den = pts.reduce((a, p) => a + (p[0] - mx) ** 2, 0);
  return round((num / den) * 60);
}

/** Cycles per second with a `tx <outcome>` key starting with `prefix` ('tx committed' = committed transactions). */
export function throughput(seconds: Second[], prefix = 'tx committed'): { mean?: number; min?: number; median?: number; max?: number; total: number } {
  const per = seconds.map((s) => Timeline.count(s, prefix));
  const total = per.reduce((a, b) => a + b, 0);
  if (per.length === 0) return { total };
  return { mean: round(total / per.length), min: Math.min(...per), median: median(per), max: Math.max(...per), total };
}

/** Event-loop lag over some seconds: the /healthz probe, and prom-client's gauges at each scrape. */
export function lagOf(seconds: Second[]): {
  probeP50Ms?: number;
  probeP99Ms?: number;
  probeMaxMs?: number;
  probeErrors: number;
  promP99WorstMs?: number;
  promP99MedianMs?: number;
  promMaxMs?: number;
  scrapeMaxMs?: number;
} {
  const probe = new Histogram();
  let probeErrors = 0;
  const promP99: number[] = [];
  const promMax: number[] = [];
  const scrape: number[] = [];
  for (const s of seconds) {
    probe.merge(s.probe);
    probeErrors += s.probeErrors;
    if (s.prom?.lagP99Ms !== undefined) promP99.push(s.prom.lagP99Ms);
    if (s.prom?.lagMaxMs !== undefined) promMax.push(s.prom.lagMaxMs);
    if (s.prom) scrape.push(s.prom.scrapeMs);
  }
  return {
    probeP50Ms: round(probe.percentileMs(50), 2),
    probeP99Ms: round(probe.percentileMs(99), 1),
    probeMaxMs: round(probe.percentileMs(100), 1),
    probeErrors,
    promP99WorstMs: round(promP99.length ? Math.max(...promP99) : undefined),
    promP99MedianMs: round(median(promP99)),
    promMaxMs: round(promMax.length ? Math.max(...promMax) : undefined),
    scrapeMaxMs: round(scrape.length ? Math.max(...scrape) : undefined),
  };
}

/** Merges phases' totals (e.g. every phase of one rig). */
export function mergeTotals(list: Array<PhaseTotals | undefined>): PhaseTotals {
  const out: PhaseTotals = { latency: new Map(), errors: new Map(), leaks: 0 };
  for (const t of list) {
    if (!t) continue;
    for (const [k, h] of t.latency) {
      let own = out.latency.get(k);
      if (!own) out.latency.set(k, (own = new Histogram()));
      own.merge(h);
    }
    for (const [k, n] of t.errors) out.errors.set(k, (out.errors.get(k) ?? 0) + n);
    out.leaks += t.leaks;
    out.leakSample ??= t.leakSample;
  }
  return out;
}

/** Requests answered 5xx, per key. */
export function count5xx(t: PhaseTotals): number {
  let n = 0;
  for (const [k, h] of t.latency) if (/ 5\d\d$/.test(k)) n += h.count;
  return n;
}

/** `{ "<op> <status>": {count, p50, p99, max} }`, latencies in ms. */
export function latencyJson(t: PhaseTotals): Record<string, { count: number; p50: number | undefined; p99: number | undefined; max: number | undefined }> {
  const out: Record<string, { count: number; p50: number | undefined; p99: number | undefined; max: number | undefined }> = {};
  for (const key of [...t.latency.keys()].sort()) {
    const h = t.latency.get(key)!;
    out[key] = { count: h.count, p50: round(h.percentileMs(50), 2), p99: round(h.percentileMs(99), 2), max: round(h.percentileMs(100), 1) };
  }
  return out;
}

export function fmt(x: number | undefined, digits = 1, unit = ''): string {
  return x === undefined || !Number.isFinite(x) ? '-' : `${x.toFixed(digits)}${unit}`;
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? (c ?? '').padEnd(widths[i]) : (c ?? '').padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The latency table of some phases' requests: one row per `<op> <status>`. */
export function latencyTable(t: PhaseTotals, seconds: number): string {
  const rows = [...t.latency.keys()].sort().map((k) => {
    const h = t.latency.get(k)!;
    return [k, String(h.count), fmt(seconds > 0 ? h.count / seconds : undefined, 1), fmt(h.percentileMs(50), 2), fmt(h.percentileMs(99), 2), fmt(h.percentileMs(100), 1)];
  });
  return table(['request / cycle  status', 'count', 'per s', 'p50 ms', 'p99 ms', 'max ms'], rows);
}

export function errorsJson(t: PhaseTotals): Record<string, number> {
  return Object.fromEntries([...t.errors].sort((a, b) => b[1] - a[1]));
}

/** Seconds of a phase list, in order. */
export function secondsOf(timeline: Timeline, phases: string[], skipFirstSeconds = 0): Second[] {
  return phases.flatMap((p, i) => timeline.phaseSeconds(p, i === 0 ? skipFirstSeconds : 0));
}
