import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { verifyLog } from '../coordinator/log/file/log-verify';
import { TEST_BREAK_ENV } from './test-switches';
import { BankTopology, GID_PREFIX, INITIAL_BALANCE } from './bank-topology';
import type { ChaosOptions } from './chaos-options';
import type { ProxyStats } from './chaos-proxy';
import { checkConsistency } from './checker';
import { readCoordinatorView } from './coordinator-view';
import { FaultInjector } from './fault-injector';
import { crashPointsFor, faultKindsFor, FaultSchedule } from './fault-schedule';
import { tallyInstanceLog } from './instance-logs';
import { History } from './history';
import { readLedger, preparedLeft } from './ledger-state';
import { waitForQuiescence } from './quiescence';
import { Rng } from './random';
import { SharedLog } from './shared-log';
import { renderSummary, tallyHistory, violationExamples, type ChaosReport } from './summary';
import { Teardown } from './teardown';
import { runWorkload } from './workload';

export interface ChaosIo {
  /** Progress lines (to stderr, say). */
  log: (message: string) => void;
  /** Aborting ends the run early (Ctrl-C): no check, everything cleaned up. */
  signal?: AbortSignal;
}

/**
 * One chaos run: sets up the bank (clusters, ledger databases, participant
 * services, the coordinator service, proxies), runs the workload while the
 * fault schedule hits every part, heals everything, waits for recovery to
 * end every transaction, checks the invariants, and tears everything down.
 * Resolves with the report; `report.ok` is false on any violation.
 *
 * @example
 * const report = await runChaos(parseChaosOptions({ transactions: 300, seed: 7, minRounds: 2 }), { log: console.error });
 * console.log(renderSummary(report));
 */
export async function runChaos(o: ChaosOptions, io: ChaosIo): Promise<ChaosReport> {
  const started = Date.now();
  const teardown = new Teardown();
  const runDir = o.runDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `twopc-chaos-${o.seed}-`));
  fs.mkdirSync(runDir, { recursive: true });
  let keepRunDir = o.keep;
  const interrupted = () => io.signal?.aborted === true;
  try {
    io.log(`chaos run, seed ${o.seed}, run directory ${runDir}`);
    let sharedLog: SharedLog | undefined;
    if (o.log !== 'file') {
      io.log(`starting the shared decision log (${o.log === 'postgres' ? 'a PostgreSQL cluster of its own' : 'redis-server, appendonly yes, appendfsync always'})`);
      sharedLog = await SharedLog.start(o.log, teardown);
    }
    const topology = await BankTopology.start(
      {
        instances: o.instances,
        leaseMs: o.leaseMs,
        ...(sharedLog ? { sharedLog } : {}),
        runDir,
        ledgers: o.ledgers,
        clusters: o.clusters,
        accountsPerLedger: o.accountsPerLedger,
        directDatabases: o.directDatabases,
        ...(o.carried ? { engine: { carriedRegistration: true } } : {}),
        ...(o.breakProtocol ? { coordinatorEnv: { [TEST_BREAK_ENV]: o.breakProtocol } } : {}),
        log: io.log,
      },
      teardown,
    );
    if (o.carried) await assertCarriedOffered(topology.api, topology.token);
    const history = new History(path.join(runDir, 'history.jsonl'));
    teardown.add('history', () => history.close());
    const injector = new FaultInjector(topology, { log: io.log, faultLog: path.join(runDir, 'faults.jsonl'), restartTimeoutMs: o.restartTimeoutMs, armedWindowMs: 10_000 });
    teardown.add('fault injector', async () => injector.finish());
    const schedule =
      o.faults.length > 0
        ? new FaultSchedule(Rng.derive(o.seed, 'faults'), {
            kinds: o.faults,
            meanGapMs: o.faultGapMs,
            ledgers: o.ledgers,
            clusters: o.clusters,
            crashPoints: o.crashPoints,
            ...(o.instances > 1 ? { instances: o.instances, leaseMs: o.leaseMs, instanceRng: Rng.derive(o.seed, 'fault-instances') } : {}),
          })
        : undefined;

    // The run: clients take transactions while there are some to take (count,
    // duration) or fault rounds still to finish; faults come while clients run.
    const workloadStarted = Date.now();
    const deadline = o.durationMs === undefined ? Infinity : workloadStarted + o.durationMs;
    let claimed = 0;
    let workloadDone = false;
    const claim = () => {
      if (interrupted()) return false;
      const wantMore = (o.transactions === undefined || claimed < o.transactions) && Date.now() < deadline;
      const roundsOwed = schedule !== undefined && injector.roundsCompleted < o.minRounds;
      if (!wantMore && !roundsOwed) return false;
      claimed += 1;
      return true;
    };
    const progress = setInterval(() => io.log(`${history.records.length} transactions done (ok ${history.count('ok')}, failed ${history.count('failed')}, unknown ${history.count('unknown')}), ${injector.applied.length} faults`), 10_000);
    teardown.add('progress', async () => clearInterval(progress));
    const workload = runWorkload({
      api: topology.api,
      ...(o.instances > 1 ? { instances: topology.coordinators.map((c) => ({ name: c.name, url: c.api })), instanceRng: Rng.derive(o.seed, 'call-instances') } : {}),
      token: topology.token,
      services: topology.ledgers.map((l) => l.serviceUrl),
      names: topology.ledgers.map((l) => l.name),
      accountsPerLedger: o.accountsPerLedger,
      workers: o.workers,
      rng: Rng.derive(o.seed, 'workload'),
      history,
      txTimeoutMs: o.txTimeoutMs,
      carried: o.carried,
      claim,
      stopping: interrupted,
    }).finally(() => {
      workloadDone = true;
    });
    const faults = schedule ? injector.run(schedule, () => !workloadDone && !interrupted()) : Promise.resolve();
    await Promise.all([workload, faults]);
    clearInterval(progress);
    const workloadMs = Date.now() - workloadStarted;

    const base = {
      seed: o.seed,
      repeat: repeatCommand(o),
      setup: {
        ledgers: o.ledgers,
        clusters: o.clusters,
        workers: o.workers,
        accountsPerLedger: o.accountsPerLedger,
        faultGapMs: o.faultGapMs,
        faults: o.faults,
        ...(o.breakProtocol ? { breakProtocol: o.breakProtocol } : {}),
        ...(o.carried ? { carried: true } : {}),
        ...(o.log !== 'file' ? { instances: o.instances, log: o.log, leaseMs: o.leaseMs } : {}),
      },
      transactions: { begun: history.records.length, beginFailures: history.beginFailures, ...tallyHistory(history.records) },
      faults: { rounds: injector.roundsCompleted, total: injector.applied.length, counters: injector.counters, links: linkTotals(topology.proxies.map((p) => p.stats)) },
      anomalies: injector.observations.filter((x) => !x.violation),
      runDir,
    };
    if (interrupted()) {
      return { ...base, interrupted: true, durationMs: { total: Date.now() - started, workload: workloadMs, settle: 0 }, recovery: { quiescent: false, waitedMs: 0 }, violations: [], examples: [], ok: false };
    }

    io.log(`workload done after ${(workloadMs / 1000).toFixed(1)} s; healing every fault and waiting for recovery`);
    const settleStarted = Date.now();
    await injector.heal();
    const quiescence = await waitForQuiescence(topology, o.settleTimeoutMs, io.log);
    const settleMs = Date.now() - settleStarted;
    io.log(`${quiescence.quiescent ? 'quiescent' : 'NOT quiescent'} after ${(quiescence.waitedMs / 1000).toFixed(1)} s; checking`);

    const ids = history.records.map((r) => r.id);
    const coordinator = await readCoordinatorView(topology.coordinators.map((c) => c.api), topology.token, ids);
    const ledgers = await Promise.all(topology.ledgers.map((l) => readLedger(l)));
    const prepared = await preparedLeft(topology, GID_PREFIX);
    // The log is verified after a clean stop: no write can be in flight, so nothing may be damaged at all.
    injector.finish();
    await Promise.all(topology.coordinators.map((c) => c.process.stop()));
    const verify = sharedLog ? { ok: true, damaged: [], missing: [] } : await verifyLog(topology.dataDir);
    // The processes' output reaches their log files through write streams: give the last lines a moment.
    if (sharedLog) await new Promise((r) => setTimeout(r, 500));
    const instanceLogs = sharedLog ? topology.coordinators.map((c) => tallyInstanceLog(c.name, c.process.spec.logFile)) : undefined;
    const { violations, stats } = checkConsistency({
      history: history.records,
      ledgers,
      initialBalance: INITIAL_BALANCE,
      prepared,
      coordinator,
      unfinished: quiescence.unfinished,
      quiescent: quiescence.quiescent,
      logVerify: { ok: verify.ok, problems: [...verify.damaged.map((d) => `${d.file}@${d.offset}: ${d.reason} (${d.verdict})`), ...verify.missing.map((m) => `missing ${m}`)] },
      observations: injector.observations,
      ...(sharedLog ? { sharedLog: true, storeUnfinished: quiescence.storeUnfinished, leaseProblems: quiescence.leaseProblems } : {}),
    });
    keepRunDir ||= violations.length > 0;
    const report: ChaosReport = {
      ...base,
      interrupted: false,
      durationMs: { total: Date.now() - started, workload: workloadMs, settle: settleMs },
      check: stats,
      ...(instanceLogs ? { instanceLogs } : {}),
      recovery: { quiescent: quiescence.quiescent, waitedMs: quiescence.waitedMs },
      anomalies: injector.observations.filter((x) => !x.violation),
      violations,
      examples: violationExamples(violations, history.byId(), coordinator, injector.applied),
      ok: violations.length === 0,
    };
    if (!keepRunDir) delete report.runDir;
    fs.writeFileSync(path.join(runDir, 'summary.json'), JSON.stringify(report, null, 2));
    fs.writeFileSync(path.join(runDir, 'summary.txt'), `${renderSummary(report)}\n`);
    return report;
  } catch (e) {
    keepRunDir = true;
    throw e;
  } finally {
    await teardown.run(io.log);
    if (!keepRunDir) fs.rmSync(runDir, { recursive: true, force: true });
  }
}

/** A carried run against a coordinator that does not offer carried registration would only count refused commits. */
async function assertCarriedOffered(api: string, token: string): Promise<void> {
  const res = await fetch(`${api}/v1/capabilities`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  const body = (await res.json().catch(() => ({}))) as { carriedRegistration?: unknown };
  if (res.status !== 200 || !body.carriedRegistration) throw new Error(`--carried: the coordinator does not offer carried registration (GET /v1/capabilities answered ${res.status} ${JSON.stringify(body)})`);
}

function linkTotals(all: ProxyStats[]): ProxyStats {
  const total: ProxyStats = { connections: 0, refused: 0, blackholed: 0, reset: 0, cut: 0 };
  for (const s of all) for (const k of Object.keys(total) as Array<keyof ProxyStats>) total[k] += s[k];
  return total;
}

/** The command line that repeats this run's schedule and workload. */
function repeatCommand(o: ChaosOptions): string {
  const args = [`--seed ${o.seed}`];
  if (o.transactions !== undefined) args.push(`--transactions ${o.transactions}`);
  if (o.durationMs !== undefined) args.push(`--duration ${o.durationMs / 1000}`);
  if (o.minRounds > 0) args.push(`--rounds ${o.minRounds}`);
  args.push(`--ledgers ${o.ledgers}`, `--clusters ${o.clusters}`, `--workers ${o.workers}`, `--accounts ${o.accountsPerLedger}`, `--fault-gap ${o.faultGapMs}`);
  if (o.log !== 'file') args.push(`--instances ${o.instances}`, `--log ${o.log}`, `--lease-ms ${o.leaseMs}`);
  const all = faultKindsFor(o.log);
  if (o.faults.length !== all.length || o.faults.some((k) => !all.includes(k))) args.push(`--faults ${o.faults.length === 0 ? 'none' : o.faults.join(',')}`);
  if (o.carried) args.push('--carried');
  const points = crashPointsFor(o.carried);
  if (o.crashPoints.length !== points.length || o.crashPoints.some((p, i) => p !== points[i])) args.push(`--crash-points ${o.crashPoints.join(',')}`);
  if (!o.directDatabases) args.push('--no-direct-databases');
  if (o.breakProtocol) args.push(`--break-protocol ${o.breakProtocol}`);
  return `npm run chaos -- ${args.join(' ')}`;
}
