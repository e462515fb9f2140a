import { fmt, rssOf } from '../summary';
import { healthyStubs, loadSection } from './common';
import type { Scenario } from './scenario';

/**
 * N clients commit for --seconds, then abort (begin → enlist → abort) for
 * --seconds, then idle. Issue 16: 88 → 580 MiB → 0.95–1.06 GiB, not down
 * after 30 s idle.
 */
export const commitThenAbort: Scenario = {
  name: 'commit-then-abort',
  summary: 'N clients commit for --seconds, then abort (begin → enlist → abort) for --seconds, then idle',
  defaults: { clients: 1000, seconds: 60, idleSeconds: 30 },
  async run(ctx, startRig) {
    const { options } = ctx;
    const stubs = healthyStubs(options);
    const rig = await startRig({ label: 'commit-then-abort', stubs, enlist: stubs.map((s) => s.name), clients: options.clients });
    await rig.idle(3, 'baseline');
    await rig.load([
      { phase: 'commit', action: 'commit', seconds: options.seconds },
      { phase: 'abort', action: 'abort', seconds: options.seconds },
    ]);
    await rig.idle(options.idleSeconds, 'idle');
    const tl = rig.timeline;
    const commit = loadSection(rig, ['commit'], options, 'commit phase');
    const abort = loadSection(rig, ['abort'], options, 'abort phase', 'tx aborted-by-client');
    const rss = {
      baseline: rssOf(tl.phaseSeconds('baseline')).endMiB,
      commitEnd: rssOf(tl.phaseSeconds('commit')).endMiB,
      commitMax: rssOf(tl.phaseSeconds('commit')).maxMiB,
      abortEnd: rssOf(tl.phaseSeconds('abort')).endMiB,
      abortMax: rssOf(tl.phaseSeconds('abort')).maxMiB,
      idleMin: rssOf(tl.phaseSeconds('idle')).minMiB,
      idleEnd: rssOf(tl.phaseSeconds('idle')).endMiB,
    };
    return {
      text: [
        ...commit.text,
        ...abort.text,
        `RSS: baseline ${fmt(rss.baseline)} → end of commit ${fmt(rss.commitEnd)} (max ${fmt(rss.commitMax)}) → end of abort ${fmt(rss.abortEnd)} (max ${fmt(rss.abortMax)}) → after ${options.idleSeconds} s idle ${fmt(rss.idleEnd)} (min ${fmt(rss.idleMin)}) MiB`,
      ],
      json: { rssMiB: rss, commit: commit.json, abort: abort.json },
      checks: [],
    };
  },
};
