import { fmt, MiB, round, rssOf } from '../summary';
import { HOLD_TIMEOUT_MS, openUntil, settledRss } from './active';
import { healthyStubs } from './common';
import type { Scenario } from './scenario';

const logMiB = (bytes: number | undefined) => (bytes === undefined ? undefined : round(bytes / 2 ** 20));

/**
 * Holds K active transactions, aborts them all (the clients call abort),
 * idles, then runs an admin compaction. Issue 16: after aborting 50k, a
 * spike to 763 MiB, then 262 MiB held for 11 idle minutes; the log
 * directory stayed at 53 MB until an admin compaction.
 */
export const abortActive: Scenario = {
  name: 'abort-active',
  summary: 'hold --active K transactions, abort them all, idle --idle-seconds, then an admin compaction: RSS and log size',
  defaults: { clients: 200, idleSeconds: 120, active: [50_000], txTimeoutMs: HOLD_TIMEOUT_MS },
  async run(ctx, startRig) {
    const { options } = ctx;
    const k = Math.max(...options.active);
    const stubs = healthyStubs(options);
    const rig = await startRig({ label: 'abort-active', stubs, enlist: stubs.map((s) => s.name), clients: options.clients });
    const tl = rig.timeline;
    const idleRss = await settledRss(rig, 3, 'baseline');
    await openUntil(rig, k, 'open');
    const heldRss = await settledRss(rig, 5, 'held');
    const held = rig.workers.held;
    const abortStarted = Date.now();
    await rig.load([{ phase: 'abort', action: 'abort-held' }]);
    const abortSeconds = round((Date.now() - abortStarted) / 1000);
    await rig.idle(options.idleSeconds, 'idle');
    const logBefore = tl.phaseSeconds('idle').at(-1)?.logDir;
    // Its own phase: the idle phase's numbers must not include the compaction's.
    tl.phase('compaction');
    const compact = await rig.adminCall('POST', '/v1/admin/log/compact');
    const afterRss = await settledRss(rig, 5, 'after-compaction');
    const logAfter = tl.phaseSeconds('after-compaction').at(-1)?.logDir;
    const peak = rssOf([...tl.phaseSeconds('abort'), ...tl.phaseSeconds('idle')]);
    const idle = rssOf(tl.phaseSeconds('idle'));
    const abortTotals = tl.phaseTotals.get('abort');
    const aborted = abortTotals?.latency.get('tx aborted-by-client')?.count ?? 0;
    const rss = { idle: idleRss, held: heldRss, peakDuringAbortOrIdle: peak.maxMiB, idleEnd: idle.endMiB, idleMin: idle.minMiB, afterCompaction: afterRss };
    const log = { heldMiB: logMiB(tl.phaseSeconds('held').at(-1)?.logDir?.bytes), beforeCompactionMiB: logMiB(logBefore?.bytes), afterCompactionMiB: logMiB(logAfter?.bytes), compaction: { status: compact.status, ms: round(compact.ms), answer: compact.body } };
    return {
      text: [
        `held ${held} active transactions; aborted ${aborted} in ${fmt(abortSeconds)} s (${options.clients} clients)`,
        `RSS: idle ${fmt(rss.idle)} → ${held} held ${fmt(rss.held)} → peak during abort/idle ${fmt(rss.peakDuringAbortOrIdle)} → after ${options.idleSeconds} s idle ${fmt(rss.idleEnd)} (min ${fmt(rss.idleMin)}) → after an admin compaction ${fmt(rss.afterCompaction)} MiB`,
        `log directory: held ${fmt(log.heldMiB)} MiB → end of idle ${fmt(log.beforeCompactionMiB)} MiB (${logBefore?.files ?? '-'} files) → after the admin compaction ${fmt(log.afterCompactionMiB)} MiB (${logAfter?.files ?? '-'} files); compaction took ${fmt(log.compaction.ms)} ms, HTTP ${compact.status}: ${JSON.stringify(compact.body)}`,
      ],
      json: { held, aborted, abortSeconds, rssMiB: rss, log, idleRssMiBSeries: tl.phaseSeconds('idle').filter((_, i) => i % 10 === 0).map((s) => MiB(s.rssKiB)) },
      checks: [],
    };
  },
};
