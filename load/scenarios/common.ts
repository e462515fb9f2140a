import type { LoadOptions } from '../load-options';
import type { Rig } from '../rig';
import { NO_FAULTS, type StubSpec } from '../stub-protocol';
import { count5xx, errorsJson, fmt, lagOf, latencyJson, latencyTable, mergeTotals, rssOf, secondsOf, throughput } from '../summary';

/** `stub-a`, `stub-b`, …: healthy stubs, one per branch of each transaction. */
export function healthyStubs(options: LoadOptions, count = options.branches): StubSpec[] {
  return Array.from({ length: count }, (_, i) => ({ name: `stub-${String.fromCharCode(97 + i)}`, faults: NO_FAULTS, verify: options.verify }));
}

/** Seconds left out of lag summaries at the start of a load: --warmup-seconds, but at most a third of a short run. */
export function warmupOf(options: LoadOptions, loadSeconds: number): number {
  return Math.min(options.warmupSeconds, Math.floor(loadSeconds / 3));
}

/** A load phase's standard report: throughput, latency by status, errors, lag outside warm-up, RSS, 5xx, leaks. */
export function loadSection(rig: Rig, phases: string[], options: LoadOptions, title: string, outcome = 'tx committed'): { text: string[]; json: Record<string, unknown> } {
  const seconds = secondsOf(rig.timeline, phases);
  const totals = mergeTotals(phases.map((p) => rig.timeline.phaseTotals.get(p)));
  const tput = throughput(seconds, outcome);
  const warmup = warmupOf(options, seconds.length);
  const lag = lagOf(secondsOf(rig.timeline, phases, warmup));
  const rss = rssOf(seconds);
  const fivexx = count5xx(totals);
  const text = [
    `${title}: ${seconds.length} s, ${rig.spec.clients} clients`,
    `  ${outcome.replace(/^tx /, '')} tx/s: mean ${fmt(tput.mean)}, median ${fmt(tput.median, 0)}, min ${fmt(tput.min, 0)}, max ${fmt(tput.max, 0)} (${tput.total} in those seconds)`,
    `  coordinator RSS: ${fmt(rss.startMiB)} → max ${fmt(rss.maxMiB)} → ${fmt(rss.endMiB)} MiB`,
    `  event-loop lag after the first ${warmup} s: probe p50 ${fmt(lag.probeP50Ms, 2)} / p99 ${fmt(lag.probeP99Ms)} / max ${fmt(lag.probeMaxMs)} ms; prom-client p99 worst ${fmt(lag.promP99WorstMs)} (median ${fmt(lag.promP99MedianMs)}) / max ${fmt(lag.promMaxMs)} ms; /metrics scrape up to ${fmt(lag.scrapeMaxMs)} ms`,
    `  5xx: ${fivexx}; client errors: ${JSON.stringify(errorsJson(totals))}; answers naming a participant address: ${totals.leaks}`,
    latencyTable(totals, seconds.length)
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
  ];
  return {
    text,
    json: { seconds: seconds.length, clients: rig.spec.clients, txPerSec: tput, rssMiB: rss, lag, fivexx, errors: errorsJson(totals), leaks: totals.leaks, latency: latencyJson(totals) },
  };
}

/** The coordinator's log lines at warn and above, most frequent first. */
export function warnings(rig: Rig, top = 5): { total: number; top: Array<{ msg: string; count: number }> } {
  const list = [...rig.coordinator.logCounts].filter(([k]) => /^(warn|error|fatal|text) /.test(k)).sort((a, b) => b[1] - a[1]);
  return { total: list.reduce((n, [, c]) => n + c, 0), top: list.slice(0, top).map(([msg, count]) => ({ msg, count })) };
}
