import type { StubSpec } from '../stub-protocol';
import { fmt, round } from '../summary';
import type { Second } from '../timeline';
import { healthyStubs, loadSection, warnings } from './common';
import type { Scenario } from './scenario';

const DEAD = 'stub-dead';
// Before the coordinator sees that it does not answer, each call in flight to it holds a connection (at most the
// clients' transactions, below participantCalls.connectionsPerOrigin); after, only participantCalls.unresponsiveProbes
// (2). Plus two: a connection the coordinator has cut is counted until the stub sees it close.
const probesBound = (clients: number) => Math.min(clients, 256) + 2;
const TAIL_S = 10;

function stubIn(s: Second, name: string) {
  return s.stubs?.find((c) => c.name === name);
}

function perSecond(seconds: Second[], f: (s: Second) => number | undefined): number | undefined {
  const xs = seconds.map(f).filter((x): x is number => x !== undefined);
  return xs.length ? round(xs.reduce((a, b) => a + b, 0) / xs.length, 2) : undefined;
}

/**
 * Every transaction enlists a healthy stub and one that accepts connections
 * and never answers. Counts what the coordinator does to it (connections,
 * calls by op per second, during the load and after it), what it keeps open
 * (live and in-doubt transactions from /metrics), how much it logs, and
 * whether the abort reasons API clients get name the participant's address.
 * Issue 16: each commit 409 after 15 s; rollback retried forever; 3,400
 * retry warnings in 2 min; 3,832 connections accepted; the URL leaks.
 */
export const deadParticipant: Scenario = {
  name: 'dead-participant',
  summary: 'one stub accepts connections and never answers: connections, rollback attempts/s, open transactions, warnings, URL leaks',
  defaults: { clients: 100, seconds: 120, idleSeconds: 30 },
  async run(ctx, startRig) {
    const { options } = ctx;
    const healthy = healthyStubs(options, Math.max(1, options.branches - 1));
    const dead: StubSpec = { name: DEAD, faults: { ...healthy[0].faults, neverAnswer: true }, verify: options.verify };
    const stubs = [...healthy, dead];
    const rig = await startRig({ label: 'dead-participant', stubs, enlist: stubs.map((s) => s.name), clients: options.clients });
    await rig.load([{ phase: 'load', action: 'commit', seconds: options.seconds }]);
    await rig.idle(options.idleSeconds, 'idle');
    const tl = rig.timeline;
    const load = loadSection(rig, ['load'], options, 'load');
    const totals = (await rig.stubs.totals()).find((s) => s.name === DEAD)!;
    const loadSeconds = tl.phaseSeconds('load');
    const idleSeconds = tl.phaseSeconds('idle');
    const tail = idleSeconds.slice(-TAIL_S);
    const promAt = (seconds: Second[]) => [...seconds].reverse().find((s) => s.prom)?.prom;
    const promLoadEnd = promAt(loadSeconds);
    const promIdleEnd = promAt(idleSeconds);
    const maxLive = Math.max(0, ...[...loadSeconds, ...idleSeconds].map((s) => s.prom?.live ?? 0));
    const rollbackPerS = { load: perSecond(loadSeconds, (s) => stubIn(s, DEAD)?.calls.rollback), idleTail: perSecond(tail, (s) => stubIn(s, DEAD)?.calls.rollback) };
    const acceptedPerS = { load: perSecond(loadSeconds, (s) => stubIn(s, DEAD)?.accepted), idleTail: perSecond(tail, (s) => stubIn(s, DEAD)?.accepted) };
    const warn = warnings(rig, 3);
    const warnPerMin = round(warn.total / ((loadSeconds.length + idleSeconds.length) / 60));
    const leakSample = tl.phaseTotals.get('load')?.leakSample;
    const leaks = load.json.leaks as number;
    const commit409 = tl.phaseTotals.get('load')?.latency.get('commit 409');
    const openAtEnd = promIdleEnd?.inDoubt;
    // How often each transaction still in phase 2 has its rollback retried, at the end.
    const retryEveryS = openAtEnd && rollbackPerS.idleTail ? round(openAtEnd / rollbackPerS.idleTail) : undefined;
    return {
      text: [
        ...load.text,
        `commit 409: ${commit409?.count ?? 0}, p50 ${fmt(commit409?.percentileMs(50))} ms, max ${fmt(commit409?.percentileMs(100))} ms`,
        `${DEAD}: ${totals.accepted} connections accepted (${fmt(acceptedPerS.load)}/s during the load, ${fmt(acceptedPerS.idleTail)}/s in the last ${TAIL_S} s of idle), at most ${totals.maxOpen} open at once`,
        `${DEAD}: calls ${JSON.stringify(totals.calls)}; rollback attempts ${fmt(rollbackPerS.load)}/s during the load, ${fmt(rollbackPerS.idleTail)}/s in the last ${TAIL_S} s of idle${retryEveryS === undefined ? '' : ` (one per in-doubt transaction every ${fmt(retryEveryS)} s)`}`,
        `transactions (from /metrics): live ${promLoadEnd?.live ?? '-'} / in-doubt ${promLoadEnd?.inDoubt ?? '-'} at the end of the load, live ${promIdleEnd?.live ?? '-'} / in-doubt ${promIdleEnd?.inDoubt ?? '-'} after ${options.idleSeconds} s idle (live at most ${maxLive}); phase-2 retries counted ${promIdleEnd?.phaseTwoRetries ?? '-'}`,
        `coordinator warnings: ${warn.total} (${fmt(warnPerMin)}/min): ${warn.top.map((w) => `${w.count}× "${w.msg}"`).join('; ')}`,
        `answers to API clients naming the participant's address: ${leaks}${leakSample ? `, e.g. ${leakSample.slice(0, 300)}` : ''}`,
      ],
      json: {
        load: load.json,
        dead: { accepted: totals.accepted, maxOpen: totals.maxOpen, calls: totals.calls, acceptedPerS, rollbackPerS, retryEveryS: retryEveryS ?? null },
        transactions: { loadEnd: promLoadEnd ?? null, idleEnd: promIdleEnd ?? null, maxLive },
        warnings: { ...warn, perMinute: warnPerMin },
        leaks,
        leakSample: leakSample ?? null,
      },
      checks: [
        { what: `connections open to the dead participant at once`, value: String(totals.maxOpen), target: `≤ ${probesBound(options.clients)}`, ok: totals.maxOpen <= probesBound(options.clients) },
        // Once it is known unresponsive, only the probes reach it: about 2 new connections per call timeout (10 s).
        { what: 'new connections per second to the dead participant, end of idle', value: String(acceptedPerS.idleTail ?? '-'), target: '≤ 1', ok: (acceptedPerS.idleTail ?? 0) <= 1 },
        { what: 'abort reasons naming the participant address', value: String(leaks), target: '0', ok: leaks === 0 },
      ],
    };
  },
};
