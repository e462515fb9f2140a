import type { Rig } from '../rig';
import type { StubCounts } from '../stub-protocol';
import { fmt, round } from '../summary';
import { healthyStubs, loadSection } from './common';
import type { Scenario } from './scenario';

const RATIO_TARGET = 0.5;

async function measure(rig: Rig, seconds: number, rate: number | undefined): Promise<StubCounts[]> {
  await rig.idle(2, 'baseline');
  await rig.load([{ phase: 'load', action: 'commit', seconds, ...(rate ? { rate } : {}) }]);
  return rig.stubs.totals();
}

/**
 * The same load twice on fresh coordinators: once with healthy stubs, once
 * with the last stub delaying --delay-fraction of its prepares by
 * --delay-ms. Issue 16: 857 → 56 tx/s at 200 clients. With a closed loop
 * (the default) even perfect isolation cannot keep 0.5×: each delayed
 * transaction keeps its client for the delay, and the report says what
 * Little's law allows; --rate makes both runs an open loop at that rate,
 * which isolates the coordinator's part.
 */
export const slowParticipant: Scenario = {
  name: 'slow-participant',
  summary: 'the same load without, then with one stub delaying --delay-fraction of prepares by --delay-ms: throughput ratio',
  defaults: { clients: 200, seconds: 60, idleSeconds: 0 },
  async run(ctx, startRig) {
    const { options } = ctx;
    const stubs = healthyStubs(options);
    const slow = stubs.at(-1)!.name;
    const enlist = stubs.map((s) => s.name);
    const baseRig = await startRig({ label: 'without-delay', stubs, enlist, clients: options.clients });
    const baseStubs = await measure(baseRig, options.seconds, options.rate);
    await baseRig.close();
    const delayed = stubs.map((s) => (s.name === slow ? { ...s, faults: { ...s.faults, delayFraction: options.delayFraction, delayMs: options.delayMs, delayOps: ['prepare' as const] } } : s));
    const slowRig = await startRig({ label: 'with-delay', stubs: delayed, enlist, clients: options.clients });
    const slowStubs = await measure(slowRig, options.seconds, options.rate);
    await slowRig.close();
    const a = loadSection(baseRig, ['load'], options, 'without the delay');
    const b = loadSection(slowRig, ['load'], options, `with ${slow} delaying ${options.delayFraction * 100}% of prepares by ${options.delayMs} ms`);
    const tpsA = (a.json.txPerSec as { mean?: number }).mean ?? 0;
    const tpsB = (b.json.txPerSec as { mean?: number }).mean ?? 0;
    const ratio = tpsA > 0 ? round(tpsB / tpsA, 3)! : 0;
    const meanCycleMs = baseRig.timeline.phaseTotals.get('load')?.latency.get('tx committed')?.meanMs() ?? NaN;
    // Closed loop: each client spends its mean cycle time, plus the delay on the delayed share of cycles.
    const ceiling = options.rate ? undefined : round(options.clients / ((meanCycleMs + options.delayFraction * options.delayMs) / 1000));
    const slowCounts = slowStubs.find((s) => s.name === slow);
    const delayedPrepares = slowCounts?.delayed ?? 0;
    return {
      text: [
        ...a.text,
        ...b.text,
        `throughput with the delay / without: ${tpsB} / ${tpsA} = ${ratio}`,
        ...(ceiling === undefined
          ? [`open loop at ${options.rate} tx/s in both runs`]
          : [`closed loop of ${options.clients} clients: perfect isolation would still cap the delayed run at ≈ ${ceiling} tx/s (${round(ceiling / tpsA, 2)}× of the run without) — ${options.clients} / (mean cycle ${fmt(meanCycleMs)} ms + ${options.delayFraction} × ${options.delayMs} ms); use --rate for an open-loop comparison`]),
        `connections to ${slow}: at most ${slowCounts?.maxOpen ?? '-'} open at once, ${slowCounts?.accepted ?? '-'} accepted; ${delayedPrepares} prepares delayed`,
      ],
      json: { without: a.json, with: b.json, ratio, closedLoopCeilingTxPerSec: ceiling ?? null, stubsWithout: baseStubs, stubsWith: slowStubs },
      checks: [{ what: 'throughput with a slow participant / without', value: String(ratio), target: `≥ ${RATIO_TARGET}${ceiling === undefined ? '' : ` (closed loop: ≤ ${round(ceiling / tpsA, 2)} reachable)`}`, ok: ratio >= RATIO_TARGET }],
    };
  },
};
