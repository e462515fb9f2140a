import type { Rig } from '../rig';
import { fmt, median, round, table } from '../summary';
import { Timeline, type Second } from '../timeline';
import { healthyStubs, loadSection } from './common';
import type { Scenario } from './scenario';

interface CompactionEvent {
  /** Epoch second the new snapshot was first seen (auto) or the admin call ended. */
  second: number;
  kind: 'admin' | 'auto';
  snapshotMiB?: number;
  /** Admin: the call's duration; auto: seconds a `.snap.tmp` was seen. */
  durationMs?: number;
  probeMaxMs?: number;
  promLagMaxMs?: number;
  /** Committed tx/s in the event's seconds against the median of the 10 s before: 0.4 = a 40% dip. */
  dip?: number;
}

const WINDOW_BEFORE_S = 10;

/** The worst second around an event (from `from` to `to`, inclusive) against the seconds before. */
function impact(tl: Timeline, from: number, to: number, scrapeSeconds: number): Pick<CompactionEvent, 'probeMaxMs' | 'promLagMaxMs' | 'dip'> {
  const during: Second[] = [];
  for (let e = from; e <= to; e++) if (tl.seconds.has(e)) during.push(tl.seconds.get(e)!);
  const before: number[] = [];
  for (let e = from - WINDOW_BEFORE_S; e < from; e++) if (tl.seconds.has(e)) before.push(Timeline.count(tl.seconds.get(e)!, 'tx committed'));
  const base = median(before);
  const worst = during.length ? Math.min(...during.map((s) => Timeline.count(s, 'tx committed'))) : undefined;
  // prom-client's max covers the scrape interval that ends at the next scrape after the event.
  const prom: number[] = [];
  for (let e = from; e <= to + scrapeSeconds + 1; e++) {
    const lag = tl.seconds.get(e)?.prom?.lagMaxMs;
    if (lag !== undefined) {
      prom.push(lag);
      break;
    }
  }
  return {
    probeMaxMs: round(Math.max(0, ...during.map((s) => s.probe.maxUs / 1000))),
    promLagMaxMs: round(prom[0]),
    dip: base && worst !== undefined ? round(1 - worst / base, 2) : undefined,
  };
}

/** Snapshots that appeared in the log directory, by second; those during an admin call are the admin's. */
function autoCompactions(tl: Timeline, seconds: Second[], adminSeconds: Set<number>, scrapeSeconds: number): CompactionEvent[] {
  const out: CompactionEvent[] = [];
  let prev: string | undefined;
  let tmpSince: number | undefined;
  for (const s of seconds) {
    if (s.logDir?.compacting && tmpSince === undefined) tmpSince = s.epoch;
    const name = s.logDir?.snapshot?.name;
    // The log starts empty (a fresh directory): its first snapshot is a compaction too.
    if (name && name !== prev && !adminSeconds.has(s.epoch)) {
      out.push({
        second: s.epoch,
        kind: 'auto',
        snapshotMiB: round(s.logDir!.snapshot!.bytes / 2 ** 20),
        ...(tmpSince === undefined ? {} : { durationMs: (s.epoch - tmpSince) * 1000 }),
        ...impact(tl, (tmpSince ?? s.epoch) - 1, s.epoch, scrapeSeconds),
      });
    }
    if (!s.logDir?.compacting) tmpSince = undefined;
    if (name) prev = name;
  }
  return out;
}

async function adminCompactions(rig: Rig, everySeconds: number, until: () => boolean, out: Array<{ start: number; end: number; ms: number; status: number; answer: unknown }>): Promise<void> {
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, everySeconds * 1000));
    if (until()) return;
    const start = Date.now();
    const r = await rig.adminCall('POST', '/v1/admin/log/compact').catch((e: unknown) => ({ status: 0, body: String(e), ms: Date.now() - start }));
    out.push({ start, end: Date.now(), ms: r.ms, status: r.status, answer: r.body });
  }
}

/**
 * Steady load while the log compacts: the file log's own compactions (as
 * sealed segments pile up) and an admin compaction every --compact-every
 * seconds. Each one is matched with the probe's worst latency and the
 * throughput dip around it. Issue 16: 80–97 MB snapshots rewritten on the
 * event loop, 240–280 ms stalls, 30–50% throughput dips.
 */
export const compaction: Scenario = {
  name: 'compaction',
  summary: 'steady load while the file log compacts (its own compactions + an admin one every --compact-every s): stalls and dips',
  defaults: { clients: 1000, seconds: 180, idleSeconds: 0 },
  async run(ctx, startRig) {
    const { options } = ctx;
    const stubs = healthyStubs(options);
    const rig = await startRig({ label: 'compaction', stubs, enlist: stubs.map((s) => s.name), clients: options.clients });
    const admin: Array<{ start: number; end: number; ms: number; status: number; answer: unknown }> = [];
    let done = false;
    const compactor = options.compactEvery > 0 ? adminCompactions(rig, options.compactEvery, () => done, admin) : Promise.resolve();
    await rig.load([{ phase: 'load', action: 'commit', seconds: options.seconds }]);
    done = true;
    await compactor;
    if (options.idleSeconds > 0) await rig.idle(options.idleSeconds, 'idle');
    const tl = rig.timeline;
    const adminSeconds = new Set<number>();
    for (const a of admin) for (let e = Math.floor(a.start / 1000); e <= Math.floor(a.end / 1000) + 1; e++) adminSeconds.add(e);
    const events: CompactionEvent[] = [
      ...admin.map((a) => {
        const second = Math.floor(a.end / 1000);
        const snapshot = (tl.seconds.get(second + 1) ?? tl.seconds.get(second))?.logDir?.snapshot;
        return {
          second,
          kind: 'admin' as const,
          ...(snapshot ? { snapshotMiB: round(snapshot.bytes / 2 ** 20) } : {}),
          durationMs: round(a.ms),
          ...impact(tl, Math.floor(a.start / 1000), second, options.scrapeSeconds),
        };
      }),
      ...autoCompactions(tl, tl.phaseSeconds('load'), adminSeconds, options.scrapeSeconds),
    ].sort((x, y) => x.second - y.second);
    const load = loadSection(rig, ['load'], options, 'load');
    const t0 = Math.floor((tl.span('load')?.start ?? 0) / 1000);
    const worstStall = Math.max(0, ...events.map((e) => e.probeMaxMs ?? 0));
    const worstDip = Math.max(0, ...events.map((e) => e.dip ?? 0));
    return {
      text: [
        ...load.text,
        `compactions during the load (${events.length}):`,
        table(
          ['at s', 'kind', 'snapshot MiB', 'took ms', 'probe max ms', 'prom lag max ms', 'tx/s dip'],
          events.map((e) => [String(e.second - t0), e.kind, fmt(e.snapshotMiB), fmt(e.durationMs, 0), fmt(e.probeMaxMs, 0), fmt(e.promLagMaxMs, 0), e.dip === undefined ? '-' : e.dip <= 0 ? 'none' : `${Math.round(e.dip * 100)}%`]),
        )
          .split('\n')
          .map((l) => `  ${l}`)
          .join('\n'),
        `worst probe latency around a compaction ${fmt(worstStall, 0)} ms; worst throughput dip ${Math.round(worstDip * 100)}%`,
      ],
      json: { load: load.json, compactions: events.map((e) => ({ ...e, atS: e.second - t0 })), worstStallMs: worstStall, worstDip, adminAnswers: admin.map((a) => a.answer) },
      checks: [],
    };
  },
};
