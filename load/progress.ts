import type { LoadWorkers } from './load-workers';
import { fmt, MiB } from './summary';
import { Timeline } from './timeline';

/**
 * One line of progress for stderr: the coordinator's memory and CPU, and
 * what the clients and the probe saw over the last few complete seconds.
 */
export function progressLine(timeline: Timeline, label: string, workers: LoadWorkers, windowSeconds = 3): string {
  const now = Math.floor(Date.now() / 1000);
  // The last second is still being reported by the workers.
  const window = Array.from({ length: windowSeconds }, (_, i) => timeline.second(now - 2 - i));
  const last = window[0];
  const per = (prefix: string) => window.reduce((n, s) => n + Timeline.count(s, prefix), 0) / windowSeconds;
  let fivexx = 0;
  let errors = 0;
  let probeMax = 0;
  for (const s of window) {
    for (const [k, h] of s.latency) if (/ 5\d\d$/.test(k)) fivexx += h.count;
    for (const n of s.errors.values()) errors += n;
    probeMax = Math.max(probeMax, s.probe.maxUs / 1000);
  }
  const prom = [...timeline.seconds.values()].filter((s) => s.prom && s.epoch <= now).at(-1)?.prom;
  const elapsed = Math.round((Date.now() - timeline.startedAt) / 1000);
  const parts = [
    `[${String(elapsed).padStart(4)} s ${label}/${timeline.currentPhase()}]`,
    `rss ${fmt(MiB(last.rssKiB), 0)} MiB cpu ${fmt(last.cpuPct, 0)}%`,
    `tx/s ${fmt(per('tx committed'), 0)} ok, ${fmt(per('tx') - per('tx committed'), 0)} other`,
    `5xx ${fivexx} err ${errors}`,
    `probe max ${fmt(probeMax, 0)} ms`,
    `lag p99 ${fmt(prom?.lagP99Ms, 0)} ms`,
    `live ${prom?.live ?? '-'} in-doubt ${prom?.inDoubt ?? '-'}`,
    `held ${workers.held} in flight ${workers.inFlight}`,
    `log ${fmt(last.logDir ? last.logDir.bytes / 2 ** 20 : undefined, 1)} MiB`,
    `load ${fmt(last.load1, 1)}`,
  ];
  return parts.join(' | ');
}
