import type { ProxyStats } from './chaos-proxy';
import type { CheckStats, Violation } from './checker';
import type { CoordinatorAnswer } from './coordinator-view';
import type { AppliedFault, FaultCounters, Observation } from './fault-injector';
import type { FaultKind } from './fault-schedule';
import type { InstanceLogTally } from './instance-logs';
import { TX_KINDS, type ClientOutcome, type TxKind, type TxRecord } from './history';

/** A violation with what the run knows of its transaction: the client's history, the coordinator's answer, and the faults around it. */
export interface ViolationExample {
  violation: Violation;
  tx?: TxRecord;
  coordinator?: CoordinatorAnswer;
  faultsNearby: AppliedFault[];
}

/** Everything a chaos run reports (also written as summary.json in the run directory). */
export interface ChaosReport {
  seed: number;
  /** The command that repeats this run's schedule and workload. */
  repeat: string;
  interrupted: boolean;
  setup: {
    ledgers: number;
    clusters: number;
    workers: number;
    accountsPerLedger: number;
    faultGapMs: number;
    faults: readonly FaultKind[];
    breakProtocol?: string;
    /** Transfers through carried registration (clients mint the ids; no begin, no enlist). */
    carried?: boolean;
    /** A shared decision log: how many instances shared it, which store, their lease. */
    instances?: number;
    log?: string;
    leaseMs?: number;
  };
  durationMs: { total: number; workload: number; settle: number };
  transactions: {
    begun: number;
    beginFailures: number;
    byKind: Record<TxKind, number>;
    outcomes: Record<ClientOutcome, number>;
    /** Of the ok ones: answered 202 (decided, phase 2 still retrying). */
    acknowledged202: number;
    /** Carried transfers the client gave up and aborted with their registrations, answered 200 (carried abort). */
    carriedAborts: number;
  };
  check?: CheckStats;
  /** A shared log: the lease events each instance logged (takeovers, fencing). */
  instanceLogs?: InstanceLogTally[];
  faults: { rounds: number; total: number; counters: FaultCounters; links: ProxyStats };
  recovery: { quiescent: boolean; waitedMs: number };
  anomalies: Observation[];
  violations: Violation[];
  examples: ViolationExample[];
  runDir?: string;
  ok: boolean;
}

/** Counts of each outcome and kind over the history. */
export function tallyHistory(records: readonly TxRecord[]): Pick<ChaosReport['transactions'], 'byKind' | 'outcomes' | 'acknowledged202' | 'carriedAborts'> {
  const byKind = Object.fromEntries(TX_KINDS.map((k) => [k, 0])) as Record<TxKind, number>;
  const outcomes: Record<ClientOutcome, number> = { ok: 0, failed: 0, unknown: 0 };
  let acknowledged202 = 0;
  let carriedAborts = 0;
  for (const r of records) {
    byKind[r.kind] += 1;
    outcomes[r.outcome] += 1;
    if (r.outcome === 'ok' && r.calls.at(-1)?.status === 202) acknowledged202 += 1;
    if (r.why.includes('carried abort 200')) carriedAborts += 1;
  }
  return { byKind, outcomes, acknowledged202, carriedAborts };
}

/** Up to `perKind` violations of each kind, each with its transaction's story. */
export function violationExamples(
  violations: readonly Violation[],
  history: ReadonlyMap<string, TxRecord>,
  coordinator: ReadonlyMap<string, CoordinatorAnswer>,
  faults: readonly AppliedFault[],
  perKind = 3,
): ViolationExample[] {
  const shown = new Map<string, number>();
  const out: ViolationExample[] = [];
  for (const v of violations) {
    const n = shown.get(v.kind) ?? 0;
    if (n >= perKind) continue;
    shown.set(v.kind, n + 1);
    const tx = v.txId ? history.get(v.txId) : undefined;
    // Faults that overlapped the transaction's life, with a margin: recovery of a kill reaches past it.
    const from = (tx?.begunAt ?? 0) - 3_000;
    const to = (tx?.endedAt ?? 0) + 3_000;
    out.push({
      violation: v,
      ...(tx ? { tx } : {}),
      ...(v.txId && coordinator.has(v.txId) ? { coordinator: coordinator.get(v.txId)! } : {}),
      faultsNearby: tx ? faults.filter((f) => f.endedAt >= from && f.startedAt <= to) : [],
    });
  }
  return out;
}

/** The report for people. */
export function renderSummary(r: ChaosReport): string {
  const lines: string[] = [];
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const list = (o: Record<string, number>) => Object.entries(o).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  lines.push(`twopc chaos: seed ${r.seed}${r.setup.breakProtocol ? `   *** PROTOCOL DELIBERATELY BROKEN: ${r.setup.breakProtocol} ***` : ''}`);
  lines.push(`  repeat with: ${r.repeat}`);
  lines.push(`  ${r.setup.ledgers} ledgers (own service process and database each) on ${r.setup.clusters} PostgreSQL cluster(s), ${r.setup.workers} clients, ${r.setup.accountsPerLedger} accounts per ledger`);
  if (r.setup.carried) lines.push('  carried registration: clients mint the ids and commit with the services\' signed registrations (no begin, no enlist; a transfer given up is aborted with the registrations it got, one abandoned ends by its branches\' timeout)');
  if (r.setup.log) lines.push(`  ${r.setup.instances} coordinator instance(s) sharing a ${r.setup.log === 'postgres' ? 'PostgreSQL' : 'Redis'} decision log, lease ${r.setup.leaseMs} ms`);
  lines.push(`  ran ${s(r.durationMs.total)} (workload ${s(r.durationMs.workload)}, settling ${s(r.durationMs.settle)})${r.interrupted ? '; INTERRUPTED' : ''}`);
  const t = r.transactions;
  lines.push(r.setup.carried ? `transactions: ${t.begun} minted by the clients (carried: no begin)` : `transactions: ${t.begun} begun (${t.beginFailures} begin calls refused or unanswered, retried)`);
  lines.push(`  kinds: ${list(t.byKind)}`);
  lines.push(`  client saw: ok ${t.outcomes.ok} (${t.acknowledged202} of them 202), failed ${t.outcomes.failed}, unknown ${t.outcomes.unknown}`);
  if (r.setup.carried) lines.push(`  carried aborts (a transfer given up, aborted with its registrations) answered 200: ${t.carriedAborts}`);
  if (r.check) {
    lines.push(`  after recovery: ${r.check.visible} applied, ${r.check.invisible} not; money ${r.check.total} of ${r.check.expectedTotal}; ${r.check.unknownToCoordinator} no longer known to the coordinator (checked against the databases only)`);
  }
  const c = r.faults.counters;
  lines.push(`faults: ${r.faults.total} in ${r.faults.rounds} full round(s): ${list(c.applied)}`);
  lines.push(`  coordinator SIGKILLs: ${c.coordinatorKills + c.crashPointKills} (${c.coordinatorKills} by the runner, ${c.crashPointKills} at crash points; ${c.crashPointsMissed} armed points not reached; ${c.firedInRecovery} crash points or disk faults hit during recovery)`);
  if (c.crashPointKills > 0) lines.push(`  crash points fired: ${list(c.crashPointKillsAt ?? {})}`);
  lines.push(`  disk faults hit: ${c.diskFaultsHit} (${c.diskFaultsMissed} not reached); service SIGKILLs ${c.serviceKills}; database crashes ${c.databaseCrashes}; SIGSTOP pauses ${c.pauses}; restarts ${c.restarts}`);
  if (r.setup.log) lines.push(`  shared log crashes: ${c.storeCrashes}`);
  for (const i of c.perInstance ?? []) {
    const logged = r.instanceLogs?.find((x) => x.name === i.name);
    lines.push(
      `  ${i.name}: SIGKILLs ${i.kills + i.crashPointKills} (${i.kills} by the runner, ${i.crashPointKills} at crash points; ${i.downPastLease} left down past the lease), pauses ${i.pauses} (${i.pausedPastLease} past the lease)` +
        (logged ? `; took over ${logged.tookOverExpired} expired lease(s) and ${logged.tookOverRestart} previous process(es) of its own; fenced ${logged.fenced}; leases registered ${logged.registered}` : ''),
    );
  }
  if (r.instanceLogs && (c.perInstance ?? []).length === 0) {
    for (const logged of r.instanceLogs) lines.push(`  ${logged.name}: took over ${logged.tookOverExpired} expired lease(s) and ${logged.tookOverRestart} previous process(es) of its own; fenced ${logged.fenced}; leases registered ${logged.registered}`);
  }
  if (r.instanceLogs) {
    const sum = (f: (x: InstanceLogTally) => number) => r.instanceLogs!.reduce((n, x) => n + f(x), 0);
    lines.push(`  takeovers: ${sum((x) => x.tookOverExpired)} of expired leases, ${sum((x) => x.tookOverRestart)} by restarts under the same name; fenced events ${sum((x) => x.fenced)}`);
  }
  const l = r.faults.links;
  lines.push(`  links: ${l.connections} connections, ${l.refused} refused, ${l.blackholed} blackholed, ${l.reset} reset, ${l.cut} cut mid-message`);
  lines.push(`recovery: ${r.recovery.quiescent ? 'quiescent' : 'NOT quiescent'} after ${s(r.recovery.waitedMs)}`);
  if (r.anomalies.length > 0) {
    lines.push(`anomalies (${r.anomalies.length}, not violations):`);
    for (const a of r.anomalies.slice(0, 10)) lines.push(`  - ${a.kind}: ${a.detail.split('\n')[0]}`);
  }
  if (r.violations.length === 0) {
    lines.push(r.interrupted ? 'violations: not checked (interrupted)' : 'violations: none');
  } else {
    const byKind = new Map<string, number>();
    for (const v of r.violations) byKind.set(v.kind, (byKind.get(v.kind) ?? 0) + 1);
    lines.push(`VIOLATIONS: ${r.violations.length} (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')})`);
    for (const e of r.examples) {
      lines.push(`  - ${e.violation.kind}${e.violation.txId ? ` ${e.violation.txId}` : ''}: ${e.violation.detail}`);
      if (e.tx) {
        lines.push(`      client: #${e.tx.seq} ${e.tx.kind} (${e.tx.mode}) legs ${e.tx.legs.map((g) => `ledger_${g.ledger}#${g.account}${g.delta > 0 ? '+' : ''}${g.delta}`).join(' ')} -> ${e.tx.outcome}: ${e.tx.why}`);
        lines.push(`      calls: ${e.tx.calls.map((k) => `${k.what} ${k.status ?? k.error}${k.code ? ` ${k.code}` : ''} (${k.ms} ms)`).join('; ')}`);
        lines.push(`      from ${new Date(e.tx.begunAt).toISOString()} to ${new Date(e.tx.endedAt).toISOString()}`);
      }
      if (e.coordinator) lines.push(`      coordinator: ${JSON.stringify(e.coordinator)}`);
      for (const f of e.faultsNearby.slice(0, 8)) lines.push(`      fault #${f.seq} ${f.kind} ${f.target} ${new Date(f.startedAt).toISOString()}: ${f.result}`);
    }
  }
  if (r.runDir) lines.push(`run directory (history.jsonl, faults.jsonl, process logs, decision log): ${r.runDir}`);
  lines.push(r.ok ? 'RESULT: OK, zero violations' : r.interrupted ? 'RESULT: interrupted' : 'RESULT: FAILED');
  return lines.join('\n');
}
