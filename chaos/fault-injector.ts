import fs from 'node:fs';
import { verifyLog } from '../coordinator/log/file/log-verify';
import { CRASH_ENV } from '../coordinator/engine/crash-points';
import { TEST_LOG_FAULT_ENV } from '../coordinator/testing/test-switches';
import type { BankTopology } from './bank-topology';
import type { ChaosProxy } from './chaos-proxy';
import { FAULT_KINDS, type FaultEvent, type FaultKind, type FaultSchedule } from './fault-schedule';
import type { ProcessExit, SupervisedProcess } from './supervised-process';

/** What the injector did, beyond the count of each kind. */
export interface FaultCounters {
  /** Faults applied, by kind. */
  applied: Record<FaultKind, number>;
  /** SIGKILLs the runner sent the coordinator (random moments, and to arm or disarm a crash point or disk fault). */
  coordinatorKills: number;
  /** The coordinator SIGKILLed itself at an armed crash point. */
  crashPointKills: number;
  /** Armed crash points and disk faults that fired while the coordinator was recovering, before it was ready. */
  firedInRecovery: number;
  /** Armed crash points its traffic did not reach in their window. */
  crashPointsMissed: number;
  /** Injected disk faults the coordinator hit (it went unready with log-unavailable). */
  diskFaultsHit: number;
  diskFaultsMissed: number;
  serviceKills: number;
  databaseCrashes: number;
  pauses: number;
  restarts: number;
}

/** A fault as it was applied (also a line of the fault log). */
export interface AppliedFault {
  seq: number;
  round: number;
  kind: FaultKind;
  target: string;
  startedAt: number;
  endedAt: number;
  result: string;
}

/**
 * Something the injector saw that is not a fault it caused: `violation` ones
 * fail the run (a log that would not open, a coordinator taking work on a
 * failed log); the others are reported as anomalies.
 */
export interface Observation {
  at: number;
  kind: 'log-damaged' | 'accepted-on-failed-log' | 'unexpected-exit' | 'restart-failed' | 'fault-failed';
  violation: boolean;
  detail: string;
}

export interface InjectorOptions {
  log: (message: string) => void;
  /** Every applied fault is appended here as a JSON line. */
  faultLog: string;
  /** A process or cluster that cannot be started again within this is reported. */
  restartTimeoutMs: number;
  /** How long an armed crash point or disk fault is given to fire. */
  armedWindowMs: number;
}

/**
 * Applies faults to the topology: one fault at a time per target (the
 * coordinator, a service, a cluster, a link), any number at once across
 * targets. Every fault restores its target before it ends, so after `settle`
 * only what `heal` repairs can be left broken. Processes that die on their
 * own are noted and started again.
 */
export class FaultInjector {
  readonly counters: FaultCounters = {
    applied: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    coordinatorKills: 0,
    crashPointKills: 0,
    crashPointsMissed: 0,
    firedInRecovery: 0,
    diskFaultsHit: 0,
    diskFaultsMissed: 0,
    serviceKills: 0,
    databaseCrashes: 0,
    pauses: 0,
    restarts: 0,
  };
  readonly observations: Observation[] = [];
  readonly applied: AppliedFault[] = [];
  private readonly locks = new Map<string, Promise<void>>();
  private readonly inFlight = new Set<Promise<void>>();
  private finished = false;
  private windingDown = false;
  private roundSize = 0;
  private readonly appliedByRound = new Map<number, number>();

  constructor(
    private readonly t: BankTopology,
    private readonly o: InjectorOptions,
  ) {
    for (const p of t.processes) p.onUnexpectedExit = (exit, tail) => this.unexpectedExit(p, exit, tail);
  }

  /**
   * Launches the schedule's faults, one gap apart, while `keepGoing()`; then
   * waits for those in flight. A fault whose target is still busy with an
   * earlier one (a coordinator restart takes seconds) holds the schedule
   * back, so faults never pile up behind a target and run after the traffic ended.
   */
  async run(schedule: FaultSchedule, keepGoing: () => boolean): Promise<void> {
    this.roundSize = schedule.roundSize;
    while (keepGoing()) {
      const event = schedule.next();
      if (!(await sleepWhile(event.gapMs, keepGoing))) break;
      const target = this.targetOf(event);
      const busy = this.locks.get(target);
      if (busy && !(await settledWhile(busy, keepGoing))) break;
      void this.serialized(target, () => this.apply(event));
    }
    // The traffic is over: armed crash points and disk faults stop waiting to be reached.
    this.windingDown = true;
    await this.settle();
  }

  /** Rounds of the schedule whose every fault has been applied (and all rounds before them). */
  get roundsCompleted(): number {
    let round = 0;
    while (this.roundSize > 0 && (this.appliedByRound.get(round + 1) ?? 0) >= this.roundSize) round += 1;
    return round;
  }

  /** Waits until no fault is in flight. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Quiescence: every link passes, nothing is paused, every cluster and process runs. */
  async heal(): Promise<void> {
    await this.settle();
    for (const proxy of this.t.proxies) proxy.setMode({ kind: 'pass' });
    for (const p of this.t.processes) p.resume();
    for (const [i, cluster] of this.t.clusters.entries()) {
      await this.serialized(`cluster:${i}`, async () => {
        if (!cluster.running) await this.startCluster(i);
      });
    }
    for (const [i, p] of this.t.processes.entries()) {
      await this.serialized(i === 0 ? 'coordinator' : `service:${i - 1}`, async () => {
        if (!p.running) await this.restart(p);
      });
    }
  }

  /** No more restarts: the run is ending. */
  finish(): void {
    this.finished = true;
  }

  private targetOf(e: FaultEvent): string {
    if (e.kind.startsWith('coordinator-') || e.kind.startsWith('disk-')) return 'coordinator';
    if (e.kind.startsWith('service-')) return `service:${e.target}`;
    if (e.kind === 'db-crash') return `cluster:${e.target}`;
    return `link:${e.target}:${e.link}`;
  }

  private serialized(target: string, fn: () => Promise<void>): Promise<void> {
    const run = (this.locks.get(target) ?? Promise.resolve()).then(fn).catch((e) => {
      this.observe('fault-failed', false, `${target}: ${e instanceof Error ? e.message : String(e)}`);
    });
    this.locks.set(target, run);
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
    return run;
  }

  private async apply(e: FaultEvent): Promise<void> {
    const startedAt = Date.now();
    const result = await this.applyKind(e);
    this.counters.applied[e.kind] += 1;
    this.appliedByRound.set(e.round, (this.appliedByRound.get(e.round) ?? 0) + 1);
    const ledger = this.t.ledgers[e.target];
    const target = this.targetOf(e);
    const entry: AppliedFault = { seq: e.seq, round: e.round, kind: e.kind, target, startedAt, endedAt: Date.now(), result };
    this.applied.push(entry);
    fs.appendFileSync(this.o.faultLog, `${JSON.stringify({ ...entry, event: e })}\n`);
    this.o.log(`fault #${e.seq} ${e.kind} ${target}${ledger && target !== 'coordinator' ? ` (${ledger.name})` : ''}: ${result}`);
  }

  private async applyKind(e: FaultEvent): Promise<string> {
    const coordinator = this.t.coordinator;
    switch (e.kind) {
      case 'coordinator-kill':
        await this.killCoordinator();
        await sleep(e.downMs);
        await this.restart(coordinator);
        return `SIGKILL, down ${e.downMs} ms`;
      case 'coordinator-crash-point':
        return this.crashPoint(e);
      case 'disk-full':
      case 'disk-io-error':
        return this.diskFault(e);
      case 'coordinator-pause':
      case 'service-pause': {
        const p = e.kind === 'coordinator-pause' ? coordinator : this.t.ledgers[e.target].service;
        if (!p.pause()) return 'skipped: not running';
        this.counters.pauses += 1;
        await sleep(e.durationMs);
        p.resume();
        return `SIGSTOP for ${e.durationMs} ms`;
      }
      case 'service-kill': {
        const service = this.t.ledgers[e.target].service;
        await service.kill();
        this.counters.serviceKills += 1;
        await sleep(e.downMs);
        await this.restart(service);
        return `SIGKILL, down ${e.downMs} ms`;
      }
      case 'db-crash': {
        const cluster = this.t.clusters[e.target];
        if (!cluster.running) return 'skipped: not running';
        await cluster.crash();
        this.counters.databaseCrashes += 1;
        await sleep(e.downMs);
        await this.startCluster(e.target);
        return `immediate stop, down ${e.downMs} ms`;
      }
      case 'link-reset':
        return `reset ${this.linkOf(e).resetAll()} connection(s)`;
      case 'link-delay':
      case 'link-refuse':
      case 'link-blackhole':
      case 'link-cut': {
        const link = this.linkOf(e);
        link.setMode(e.mode);
        await sleep(e.durationMs);
        link.setMode({ kind: 'pass' });
        return `${JSON.stringify(e.mode)} for ${e.durationMs} ms`;
      }
    }
  }

  private linkOf(e: FaultEvent): ChaosProxy {
    const ledger = this.t.ledgers[e.target];
    return e.link === 'inbound' ? ledger.inbound : ledger.outbound;
  }

  /** SIGKILL, then checks the log as a restart will read it. */
  private async killCoordinator(): Promise<void> {
    if (await this.t.coordinator.kill()) this.counters.coordinatorKills += 1;
    await this.verifyLogOpens('after SIGKILL');
  }

  private async crashPoint(e: FaultEvent): Promise<string> {
    const { point, hit } = e.crashAt;
    const coordinator = this.t.coordinator;
    await this.killCoordinator();
    const armed = await this.startArmed({ [CRASH_ENV]: `${point}:${hit}` }, () => coordinator.lastExit?.signal === 'SIGKILL');
    let result: string;
    if (armed === 'failed') {
      result = `could not restart armed at ${point}:${hit}`;
    } else if (armed === 'fired-in-recovery') {
      this.counters.crashPointKills += 1;
      this.counters.firedInRecovery += 1;
      await this.verifyLogOpens(`after crash point ${point} in recovery`);
      result = `killed itself at ${point}:${hit} while recovering`;
    } else {
      const exit = await this.waitArmed(coordinator);
      if (exit?.signal === 'SIGKILL') {
        this.counters.crashPointKills += 1;
        await this.verifyLogOpens(`after crash point ${point}`);
        result = `killed itself at ${point}:${hit}`;
      } else {
        if (exit) this.observe('unexpected-exit', false, `coordinator armed at ${point}:${hit} exited with ${exit.signal ?? `code ${exit.code}`}:\n${coordinator.tail(1_500)}`);
        this.counters.crashPointsMissed += 1;
        await this.killCoordinator();
        result = `${point}:${hit} not reached in ${this.o.armedWindowMs} ms; SIGKILLed`;
      }
    }
    await sleep(e.downMs);
    await this.restart(coordinator);
    return result;
  }

  /**
   * Starts the coordinator armed with a crash point or a disk fault. The armed
   * fault may fire while it recovers, before it is ready (recovery resumes
   * phase 2 and writes records): then every armed start would fire it again,
   * so that counts as fired, and the caller starts it unarmed. Other failed
   * starts (a database still down) are retried.
   */
  private async startArmed(env: Record<string, string>, fired: () => boolean): Promise<'ready' | 'fired-in-recovery' | 'failed'> {
    const coordinator = this.t.coordinator;
    const deadline = Date.now() + this.o.restartTimeoutMs;
    for (;;) {
      try {
        await coordinator.start(env, { exitExpected: true });
        this.counters.restarts += 1;
        return 'ready';
      } catch (e) {
        if (fired()) return 'fired-in-recovery';
        if (Date.now() > deadline || this.finished) {
          this.observe('restart-failed', false, `coordinator could not be started armed with ${JSON.stringify(env)}: ${e instanceof Error ? e.message.slice(0, 2_000) : String(e)}`);
          return 'failed';
        }
        await sleep(500);
      }
    }
  }

  /**
   * Restarts the coordinator on a disk that fails from the n-th write (or
   * fdatasync) on. It must go unready and refuse new work with
   * `log-unavailable`; then it is SIGKILLed and started on a healthy disk.
   * Whether it lost an acknowledged decision is the checker's business.
   */
  private async diskFault(e: FaultEvent): Promise<string> {
    const spec = e.kind === 'disk-full' ? `write:ENOSPC:${e.diskAt}` : `fdatasync:EIO:${e.diskAt}`;
    const coordinator = this.t.coordinator;
    await this.killCoordinator();
    const armed = await this.startArmed({ [TEST_LOG_FAULT_ENV]: spec }, () => coordinator.tail(100_000).includes('TEST ONLY: injected'));
    if (armed !== 'ready') {
      if (armed === 'fired-in-recovery') {
        // Its recovery could not write: it must refuse to start (and say why), not serve on a failed log.
        this.counters.diskFaultsHit += 1;
        this.counters.firedInRecovery += 1;
      }
      await this.verifyLogOpens(`after ${spec}`);
      await sleep(e.downMs);
      await this.restart(coordinator);
      return armed === 'failed' ? `could not restart with ${spec}` : `${spec} hit while recovering: the coordinator refused to start`;
    }
    const deadline = Date.now() + this.o.armedWindowMs;
    let result = `${spec} not reached in ${this.o.armedWindowMs} ms`;
    for (;;) {
      if (!coordinator.running) {
        result = `${spec}: the coordinator exited`;
        break;
      }
      const ready = await fetchStatus(`${this.t.api}/readyz`, 'GET');
      if (ready === 503) {
        this.counters.diskFaultsHit += 1;
        // Unready is not enough: new work must be refused, with the reason.
        const begin = await fetchProblem(`${this.t.api}/v1/transactions`, this.t.token);
        if (begin.status !== 503 || begin.code !== 'log-unavailable') {
          this.observe('accepted-on-failed-log', true, `after ${spec} the coordinator answered a begin with ${begin.status} ${begin.code ?? ''}, not 503 log-unavailable`);
        }
        result = `${spec}: unready, begin refused with ${begin.status} ${begin.code ?? ''}`;
        break;
      }
      if (Date.now() > deadline || this.windingDown) {
        this.counters.diskFaultsMissed += 1;
        break;
      }
      await sleep(100);
    }
    await this.killCoordinator();
    await sleep(e.downMs);
    await this.restart(coordinator);
    return result;
  }

  /** Waits for an armed coordinator to kill itself, up to the armed window (less once the traffic is over). */
  private async waitArmed(coordinator: SupervisedProcess): Promise<ProcessExit | undefined> {
    const deadline = Date.now() + this.o.armedWindowMs;
    while (Date.now() < deadline && !this.windingDown) {
      const exit = await coordinator.waitExit(Math.min(200, deadline - Date.now()));
      if (exit) return exit;
    }
    return undefined;
  }

  private async verifyLogOpens(when: string): Promise<void> {
    try {
      const report = await verifyLog(this.t.dataDir);
      if (!report.opens) {
        const damage = report.damaged.map((d) => `${d.file}@${d.offset}: ${d.reason} (${d.verdict})`).concat(report.missing.map((m) => `missing ${m}`));
        this.observe('log-damaged', true, `${when}: the decision log would not open: ${damage.join('; ')}`);
      }
    } catch (e) {
      this.observe('log-damaged', true, `${when}: log verify failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Starts a process again, retrying while it fails (its database may be down); undefined if it never came up. */
  private async restart(p: SupervisedProcess, env: Record<string, string> = {}, options: { exitExpected?: boolean } = {}): Promise<string | undefined> {
    if (p.running) return undefined;
    const deadline = Date.now() + this.o.restartTimeoutMs;
    for (;;) {
      try {
        const line = await p.start(env, options);
        this.counters.restarts += 1;
        return line;
      } catch (e) {
        if (Date.now() > deadline || this.finished) {
          this.observe('restart-failed', false, `${p.spec.label} could not be started again: ${e instanceof Error ? e.message.slice(0, 2_000) : String(e)}`);
          return undefined;
        }
        await sleep(500);
      }
    }
  }

  private async startCluster(index: number): Promise<void> {
    const cluster = this.t.clusters[index];
    const deadline = Date.now() + this.o.restartTimeoutMs;
    for (;;) {
      try {
        await cluster.startServer();
        return;
      } catch (e) {
        if (Date.now() > deadline) {
          this.observe('restart-failed', false, `cluster ${index} could not be started again: ${e instanceof Error ? e.message.slice(0, 2_000) : String(e)}`);
          return;
        }
        await sleep(500);
      }
    }
  }

  private unexpectedExit(p: SupervisedProcess, exit: ProcessExit, tail: string): void {
    this.observe('unexpected-exit', false, `${p.spec.label} exited on its own (${exit.signal ?? `code ${exit.code}`}); its last output:\n${tail.slice(-1_500)}`);
    if (this.finished) return;
    const index = this.t.processes.indexOf(p);
    void this.serialized(index === 0 ? 'coordinator' : `service:${index - 1}`, async () => {
      if (!p.running) await this.restart(p);
    });
  }

  private observe(kind: Observation['kind'], violation: boolean, detail: string): void {
    this.observations.push({ at: Date.now(), kind, violation, detail });
    this.o.log(`${violation ? 'VIOLATION' : 'anomaly'} (${kind}): ${detail.split('\n')[0]}`);
  }
}

async function fetchStatus(url: string, method: string): Promise<number | null> {
  try {
    const res = await fetch(url, { method, signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return null;
  }
}

async function fetchProblem(url: string, token: string): Promise<{ status: number | null; code?: string }> {
  try {
    const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(2_000) });
    const body = (await res.json().catch(() => ({}))) as { code?: string };
    return { status: res.status, ...(typeof body.code === 'string' ? { code: body.code } : {}) };
  } catch {
    return { status: null };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for `promise`, giving up (false) as soon as `keepGoing()` turns false. */
async function settledWhile(promise: Promise<unknown>, keepGoing: () => boolean): Promise<boolean> {
  let settled = false;
  void promise.finally(() => (settled = true));
  while (!settled) {
    if (!keepGoing()) return false;
    await sleep(50);
  }
  return keepGoing();
}

/** Sleeps `ms`, waking early (false) as soon as `keepGoing()` turns false. */
async function sleepWhile(ms: number, keepGoing: () => boolean): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!keepGoing()) return false;
    await sleep(Math.min(100, until - Date.now()));
  }
  return keepGoing();
}
