import { Histogram } from '../histogram';
import { readListenDrops } from '../proc-stats';
import { fmt, round } from '../summary';
import { healthyStubs, loadSection } from './common';
import type { Scenario } from './scenario';

const FIRST_S = 10;

/**
 * N clients that all connect at the same instant (fresh workers, no
 * connection yet, one start time) and then run the steady cycle. The
 * kernel's ListenOverflows/ListenDrops counters before and after say how
 * many SYNs the coordinator's accept queue dropped (node's default backlog
 * is 511). Issue 16: 200–1,600 dropped SYNs, first-10-s begin p99 4.6–7.9 s.
 */
export const burst: Scenario = {
  name: 'burst',
  summary: 'N clients connect at the same instant: SYNs dropped by the listen queue (/proc/net/netstat), first-10-s begin latency',
  defaults: { clients: 1000, seconds: 20, idleSeconds: 0, connectTimeoutMs: 60_000 },
  async run(ctx, startRig) {
    const { options } = ctx;
    const stubs = healthyStubs(options);
    const rig = await startRig({ label: 'burst', stubs, enlist: stubs.map((s) => s.name), clients: options.clients });
    await rig.idle(2, 'baseline');
    const before = readListenDrops();
    await rig.load(
      [
        { phase: 'first-10s', action: 'commit', seconds: Math.min(FIRST_S, options.seconds) },
        ...(options.seconds > FIRST_S ? [{ phase: 'after', action: 'commit' as const, seconds: options.seconds - FIRST_S }] : []),
      ],
      // Every worker is told well ahead, so all clients start within a millisecond or two.
      1000,
    );
    const after = readListenDrops();
    if (options.idleSeconds > 0) await rig.idle(options.idleSeconds, 'idle');
    const first = loadSection(rig, ['first-10s'], options, `cycles started in the first ${FIRST_S} s`);
    const rest = options.seconds > FIRST_S ? loadSection(rig, ['after'], options, 'cycles started after that') : undefined;
    const begin = rig.timeline.phaseTotals.get('first-10s')?.latency.get('begin 201');
    const drops = before && after ? { listenOverflows: after.overflows - before.overflows, listenDrops: after.drops - before.drops } : undefined;
    const stats = (h: Histogram | undefined) => ({ count: h?.count ?? 0, p50Ms: round(h?.percentileMs(50)), p99Ms: round(h?.percentileMs(99)), maxMs: round(h?.percentileMs(100)) });
    const beginStats = stats(begin);
    const firstBegins = new Histogram();
    for (const [key, h] of rig.timeline.phaseTotals.get('first-10s')?.latency ?? []) if (key.startsWith('first begin ')) firstBegins.merge(h);
    const firstStats = stats(firstBegins);
    return {
      text: [
        `kernel listen-queue counters during the run (whole machine): ListenOverflows +${drops?.listenOverflows ?? '-'}, ListenDrops +${drops?.listenDrops ?? '-'}`,
        `each client's first begin (it opens the connection), any status: ${firstStats.count}, p50 ${fmt(firstStats.p50Ms)} / p99 ${fmt(firstStats.p99Ms)} / max ${fmt(firstStats.maxMs)} ms`,
        `every begin (201) of cycles started in the first ${FIRST_S} s: ${beginStats.count}, p50 ${fmt(beginStats.p50Ms)} / p99 ${fmt(beginStats.p99Ms)} / max ${fmt(beginStats.maxMs)} ms`,
        ...first.text,
        ...(rest?.text ?? []),
      ],
      json: { listen: drops ?? null, firstBegin: firstStats, first10sBegin: beginStats, first10s: first.json, after: rest?.json ?? null },
      checks: [],
    };
  },
};
