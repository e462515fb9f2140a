// The service's own Prometheus metrics (/metrics), sampled by the overview's polling: rates and phase latencies
// over the last minutes come from the differences between samples, as Prometheus itself would compute them.

/** Parses the text exposition format into [{ name, labels, value }]. */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

const sum = (samples, name, pick = () => true) => samples.filter((s) => s.name === name && pick(s.labels)).reduce((a, s) => a + s.value, 0);

/** The samples of the last `windowMs`, and what they say. */
export class MetricsWindow {
  constructor(windowMs = 5 * 60_000) {
    this.windowMs = windowMs;
    this.points = [];
  }

  add(text, at = Date.now()) {
    this.points.push({ at, samples: parseMetrics(text) });
    while (this.points.length > 2 && at - this.points[1].at >= this.windowMs) this.points.shift();
  }

  get latest() {
    return this.points[this.points.length - 1]?.samples ?? [];
  }

  /** A gauge's value now (summed over its labels). */
  gauge(name) {
    return sum(this.latest, name);
  }

  /** Decisions (transactions ended) per second between consecutive samples: [{ at, rate }]. */
  decisionRates() {
    const rates = [];
    for (let i = 1; i < this.points.length; i++) {
      const a = this.points[i - 1];
      const b = this.points[i];
      const d = sum(b.samples, 'twopc_transactions_total') - sum(a.samples, 'twopc_transactions_total');
      rates.push({ at: b.at, rate: Math.max(0, d) / ((b.at - a.at) / 1000) });
    }
    return rates;
  }

  /** Decisions per second over the whole window (null until two samples). */
  decisionRate() {
    if (this.points.length < 2) return null;
    const a = this.points[0];
    const b = this.points[this.points.length - 1];
    return Math.max(0, sum(b.samples, 'twopc_transactions_total') - sum(a.samples, 'twopc_transactions_total')) / ((b.at - a.at) / 1000);
  }

  /**
   * Per phase: over the window { count, meanMs, p95Ms } (p95 as the upper bound of its histogram bucket), and
   * since the coordinator started { totalCount, totalMeanMs }.
   */
  phaseLatencies() {
    const last = this.latest;
    const first = this.points.length > 1 ? this.points[0].samples : last;
    const phases = [...new Set(last.filter((s) => s.name === 'twopc_phase_seconds_count').map((s) => s.labels.phase))].sort();
    return phases.map((phase) => {
      const of = (samples, name) => sum(samples, name, (l) => l.phase === phase);
      const totalCount = of(last, 'twopc_phase_seconds_count');
      const totalSum = of(last, 'twopc_phase_seconds_sum');
      const count = totalCount - of(first, 'twopc_phase_seconds_count');
      const windowSum = totalSum - of(first, 'twopc_phase_seconds_sum');
      const bucket = (samples) =>
        samples.filter((s) => s.name === 'twopc_phase_seconds_bucket' && s.labels.phase === phase).map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), value: s.value }));
      const before = new Map(bucket(first).map((b) => [b.le, b.value]));
      const buckets = bucket(last).map((b) => ({ le: b.le, n: b.value - (before.get(b.le) ?? 0) })).sort((x, y) => x.le - y.le);
      const p95 = count > 0 ? buckets.find((b) => b.n >= 0.95 * count)?.le : undefined;
      return {
        phase,
        count,
        meanMs: count > 0 ? (windowSum / count) * 1000 : null,
        p95Ms: p95 === undefined ? null : p95 * 1000,
        totalCount,
        totalMeanMs: totalCount > 0 ? (totalSum / totalCount) * 1000 : null,
      };
    });
  }

  /** Transactions ended since the coordinator started, by outcome. */
  endedByOutcome() {
    const out = {};
    for (const s of this.latest) if (s.name === 'twopc_transactions_total') out[s.labels.outcome] = (out[s.labels.outcome] ?? 0) + s.value;
    return out;
  }
}
