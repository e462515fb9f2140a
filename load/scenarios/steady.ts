import { fmt, lagOf, rssOf, rssSlopeMiBPerMin } from '../summary';
import { healthyStubs, loadSection, warmupOf, warnings } from './common';
import type { Scenario } from './scenario';

// Issue 16's must-show for this scenario.
const PLATEAU_MIB = 400;
const IDLE_MIB = 150;
const IDLE_WITHIN_S = 120;
const LAG_P99_MS = 50;

/**
 * N clients, each: begin → enlist a branch at each stub → commit, back to
 * back (closed loop); then no load. Issue 16: 1,000 clients for 5 minutes
 * took RSS from 88 MiB to 1.93 GiB, still climbing.
 */
export const steady: Scenario = {
  name: 'steady',
  summary: 'N clients begin → enlist 2 branches → commit (closed loop) for --seconds, then --idle-seconds without load',
  defaults: { clients: 1000, seconds: 600, idleSeconds: 120 },
  async run(ctx, startRig) {
    const { options } = ctx;
    const stubs = healthyStubs(options);
    const rig = await startRig({ label: 'steady', stubs, enlist: stubs.map((s) => s.name), clients: options.clients });
    await rig.idle(3, 'baseline');
    await rig.load([{ phase: 'load', action: 'commit', seconds: options.seconds, ...(options.rate ? { rate: options.rate } : {}) }]);
    await rig.idle(options.idleSeconds, 'idle');
    const load = loadSection(rig, ['load'], options, 'load');
    const tl = rig.timeline;
    const baseline = rssOf(tl.phaseSeconds('baseline'));
    const loadSeconds = tl.phaseSeconds('load');
    const idleSeconds = tl.phaseSeconds('idle');
    const rssLoad = rssOf(loadSeconds);
    const rssIdle = rssOf(idleSeconds);
    const slope = rssSlopeMiBPerMin(loadSeconds.slice(Math.floor((loadSeconds.length * 2) / 3)));
    const idleStart = tl.span('idle')?.start ?? 0;
    const fellBack = idleSeconds.find((s) => s.rssKiB !== undefined && s.rssKiB / 1024 <= IDLE_MIB);
    const fellBackAfterS = fellBack ? fellBack.epoch - Math.floor(idleStart / 1000) : undefined;
    // The target is to stay there, not to touch it once (the log's compactions used to take RSS back up).
    const afterFall = fellBack ? rssOf(idleSeconds.filter((s) => s.epoch >= fellBack.epoch)).maxMiB : undefined;
    const lag = lagOf(tl.phaseSeconds('load', warmupOf(options, loadSeconds.length)));
    const warn = warnings(rig);
    const text = [
      ...load.text,
      `  RSS slope over the last third of the load: ${fmt(slope)} MiB/min`,
      `idle: ${idleSeconds.length} s: RSS ${fmt(rssIdle.startMiB)} → min ${fmt(rssIdle.minMiB)} → ${fmt(rssIdle.endMiB)} MiB${fellBackAfterS === undefined ? `; never ≤ ${IDLE_MIB} MiB` : `; ≤ ${IDLE_MIB} MiB after ${fellBackAfterS} s, at most ${fmt(afterFall)} MiB from then on`}`,
      `baseline (no load) RSS ${fmt(baseline.endMiB)} MiB; coordinator warnings: ${warn.total}`,
    ];
    const idleOk = fellBackAfterS !== undefined && fellBackAfterS <= IDLE_WITHIN_S && (afterFall ?? Infinity) <= IDLE_MIB;
    return {
      text,
      json: {
        load: load.json,
        rssMiB: { baseline: baseline.endMiB, loadMax: rssLoad.maxMiB, loadEnd: rssLoad.endMiB, idleMin: rssIdle.minMiB, idleEnd: rssIdle.endMiB, slopeLastThirdMiBPerMin: slope, fellBackAfterS: fellBackAfterS ?? null, idleMaxAfterFallMiB: afterFall ?? null },
        warnings: warn,
      },
      checks: [
        { what: 'RSS during load (plateau)', value: `${fmt(rssLoad.maxMiB)} MiB max, ${fmt(slope)} MiB/min at the end`, target: `≤ ${PLATEAU_MIB} MiB`, ok: (rssLoad.maxMiB ?? Infinity) <= PLATEAU_MIB },
        { what: `RSS after idle`, value: fellBackAfterS === undefined ? `${fmt(rssIdle.minMiB)} MiB at best` : `≤ ${IDLE_MIB} MiB after ${fellBackAfterS} s, then at most ${fmt(afterFall)} MiB`, target: `≤ ${IDLE_MIB} MiB within ${IDLE_WITHIN_S} s, and stays there`, ok: idleOk },
        { what: '5xx answers', value: String(load.json.fivexx), target: '0', ok: load.json.fivexx === 0 },
        { what: 'event-loop lag p99 after warm-up (prom-client, worst scrape window)', value: `${fmt(lag.promP99WorstMs)} ms (probe p99 ${fmt(lag.probeP99Ms)}, max ${fmt(lag.probeMaxMs)} ms)`, target: `≤ ${LAG_P99_MS} ms`, ok: (lag.promP99WorstMs ?? Infinity) <= LAG_P99_MS },
      ],
    };
  },
};
