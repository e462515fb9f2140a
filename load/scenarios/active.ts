import type { Rig } from '../rig';
import { fmt, lagOf, median, MiB, round, table } from '../summary';
import { healthyStubs } from './common';
import type { Scenario } from './scenario';

const TARGET_50K_MIB = 300;
// The longest transaction timeout the coordinator accepts by default (engine.maxTimeoutMs): held transactions must not expire mid-run.
export const HOLD_TIMEOUT_MS = 600_000;

// Settled: the last three one-second samples within 3% of each other, or this long at most.
const SETTLE_SPREAD = 0.03;
const SETTLE_MAX_S = 30;

/**
 * RSS once settled: after at least `seconds` without load, and once the last
 * three samples agree within 3% (at most 30 s): memory keeps growing for a
 * few seconds after the last transaction opened. The median of those three, MiB.
 */
export async function settledRss(rig: Rig, seconds: number, phase: string): Promise<number | undefined> {
  const started = Date.now();
  rig.timeline.phase(phase);
  const lastThree = () =>
    rig.timeline
      .range(started, Date.now())
      .map((s) => s.rssKiB)
      .filter((x): x is number => x !== undefined)
      .slice(-3);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const elapsed = (Date.now() - started) / 1000;
    const rss = lastThree();
    const steady = rss.length === 3 && Math.max(...rss) - Math.min(...rss) <= SETTLE_SPREAD * Math.max(...rss);
    if ((elapsed >= Math.max(3, seconds) && steady) || elapsed >= Math.max(SETTLE_MAX_S, seconds)) return MiB(median(rss));
  }
}

/** Opens transactions (begin + enlist, never ended) until `target` are held. */
export async function openUntil(rig: Rig, target: number, phase: string): Promise<void> {
  const missing = target - rig.workers.held;
  if (missing > 0) await rig.load([{ phase, action: 'open', quota: missing }]);
}

/**
 * Holds K active transactions (begun, every branch enlisted, never ended)
 * and reads the coordinator's RSS once settled: memory per active
 * transaction. Issue 16: 87 / 139 / 318 MiB idle / 10k / 50k (≈ 4.6 KiB each).
 */
export const active: Scenario = {
  name: 'active',
  summary: 'hold --active K1,K2,… active transactions (begin + enlist, never ended): settled RSS per level, KiB per transaction',
  defaults: { clients: 200, idleSeconds: 5, active: [10_000, 50_000], txTimeoutMs: HOLD_TIMEOUT_MS },
  async run(ctx, startRig) {
    const { options } = ctx;
    const stubs = healthyStubs(options);
    const rig = await startRig({ label: 'active', stubs, enlist: stubs.map((s) => s.name), clients: options.clients });
    const idle = await settledRss(rig, options.idleSeconds, 'baseline');
    const levels: Array<{ active: number; rssMiB?: number; kibPerTx?: number; logDirMiB?: number; openSeconds: number; scrapeMaxMs?: number; probeMaxMs?: number }> = [];
    for (const level of [...options.active].sort((a, b) => a - b)) {
      const started = Date.now();
      await openUntil(rig, level, `open-${level}`);
      const openSeconds = round((Date.now() - started) / 1000, 1)!;
      const rss = await settledRss(rig, options.idleSeconds, `held-${level}`);
      const held = rig.workers.held;
      const last = rig.timeline.phaseSeconds(`held-${level}`).at(-1);
      // With no load, a slow /metrics scrape or probe is the coordinator's own work on its K transactions.
      const lag = lagOf(rig.timeline.phaseSeconds(`held-${level}`));
      levels.push({
        active: held,
        rssMiB: rss,
        kibPerTx: rss !== undefined && idle !== undefined && held > 0 ? round(((rss - idle) * 1024) / held, 2) : undefined,
        logDirMiB: last?.logDir ? round(last.logDir.bytes / 2 ** 20) : undefined,
        openSeconds,
        scrapeMaxMs: lag.scrapeMaxMs,
        probeMaxMs: lag.probeMaxMs,
      });
      ctx.log(`${held} active: RSS ${fmt(rss)} MiB`);
    }
    const fifty = levels.find((l) => l.active >= 50_000);
    return {
      text: [
        table(
          ['active transactions', 'RSS MiB', 'KiB per tx (vs idle)', 'log dir MiB', 'opened in s', '/metrics scrape ms', 'probe max ms'],
          [['0 (idle)', fmt(idle), '-', '-', '-', '-', '-'], ...levels.map((l) => [String(l.active), fmt(l.rssMiB), fmt(l.kibPerTx, 2), fmt(l.logDirMiB), fmt(l.openSeconds), fmt(l.scrapeMaxMs), fmt(l.probeMaxMs)])],
        ),
      ],
      json: { idleRssMiB: idle, levels },
      checks: fifty ? [{ what: `RSS with ${fifty.active} active transactions`, value: `${fmt(fifty.rssMiB)} MiB`, target: `≤ ${TARGET_50K_MIB} MiB`, ok: (fifty.rssMiB ?? Infinity) <= TARGET_50K_MIB }] : [],
    };
  },
};
