import fs from 'node:fs';
import type { Rig } from './rig';
import { round } from './summary';
import { Timeline, type Second } from './timeline';

function secondJson(label: string, t0: number, s: Second): Record<string, unknown> {
  const requests: Record<string, number> = {};
  for (const [k, h] of s.latency) requests[k] = h.count;
  const committed = s.latency.get('tx committed');
  return {
    run: label,
    t: s.epoch - t0,
    epoch: s.epoch,
    phase: s.phase,
    rssMiB: s.rssKiB === undefined ? null : round(s.rssKiB / 1024),
    cpuPct: round(s.cpuPct, 0) ?? null,
    load1: s.load1 ?? null,
    logDirMiB: s.logDir ? round(s.logDir.bytes / 2 ** 20, 2) : null,
    logFiles: s.logDir?.files ?? null,
    snapshotMiB: s.logDir?.snapshot ? round(s.logDir.snapshot.bytes / 2 ** 20, 2) : null,
    compacting: s.logDir?.compacting ?? null,
    txCommitted: Timeline.count(s, 'tx committed'),
    txOther: Timeline.count(s, 'tx') - Timeline.count(s, 'tx committed'),
    txCommittedP99Ms: committed ? round(committed.percentileMs(99), 1) : null,
    requests,
    errors: Object.fromEntries(s.errors),
    leaks: s.leaks,
    probe: { count: s.probe.count, p99Ms: round(s.probe.percentileMs(99), 2) ?? null, maxMs: round(s.probe.maxUs / 1000, 2), errors: s.probeErrors },
    prom: s.prom ?? null,
    stubs: s.stubs ? Object.fromEntries(s.stubs.map((c) => [c.name, { calls: c.calls, accepted: c.accepted, open: c.open }])) : null,
    logLines: Object.fromEntries(s.logLines),
  };
}

/** `--out`: one JSON object per second of every rig, in order. */
export function writeSeries(file: string, rigs: Rig[]): void {
  const lines: string[] = [];
  for (const rig of rigs) {
    const tl = rig.timeline;
    const t0 = Math.floor(tl.startedAt / 1000);
    const last = Math.floor((tl.phases.at(-1)?.end ?? Date.now()) / 1000);
    for (const epoch of [...tl.seconds.keys()].sort((a, b) => a - b)) {
      if (epoch < t0 || epoch > last) continue;
      lines.push(JSON.stringify(secondJson(rig.spec.label, t0, tl.seconds.get(epoch)!)));
    }
  }
  fs.writeFileSync(file, lines.length ? `${lines.join('\n')}\n` : '');
}
