import fs from 'node:fs';
import { verifyLog } from '../coordinator/log/file/log-verify';
import { CRASH_ENV } from '../coordinator/engine/crash-points';
import { TEST_LOG_FAULT_ENV } from './test-switches';
import type { BankTopology, CoordinatorNode } from './bank-topology';
import type { ChaosProxy } from './chaos-proxy';
import { ALL_FAULT_KINDS, type FaultEvent, type FaultKind, type FaultSchedule } from './fault-schedule';
import { InstanceRouter } from './instance-router';
import type { ProcessExit, SupervisedProcess } from './supervised-process';

/** What the injector did, beyond the count of each kind. */
export interface FaultCounters {
  /** Faults applied, by kind. */
  applied: Record<FaultKind, number>;
  /** SIGKILLs the runner sent the coordinator (random moments, and to arm or disarm a crash point or disk fault). */
  coordinatorKills: number;
  /** The coordinator SIGKILLed itself at an armed crash point. */
  crashPointKills: number;
  /** Those kills by point (in recovery or serving). */
  crashPointKillsAt: Record<string, number>;
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
  /** Crashes of the shared decision log's server (store-crash). */
  storeCrashes: number;
  /** Several instances: what happened to each. */
  perInstance: InstanceCounters[];
}

/** The faults one coordinator instance took. */
export interface InstanceCounters {
  name: string;
  /** SIGKILLs by the runner. */
  kills: number;
  /** It SIGKILLed itself at an armed crash point. */
  crashPointKills: number;
  pauses: number;
  /** Kills after which it stayed down past its lease, so that another instance had to take it over. */
  downPastLease: number;
  /** Pauses past its lease: it must have been fenced. */
  pausedPastLease: number;
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
    applied: Object.fromEntries(ALL_FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    coordinatorKills: 0,
    crashPointKills: 0,
    crashPointKillsAt: {},
    crashPointsMissed: 0,
    firedInRecovery: 0,
    diskFaultsHit: 0,
    diskFaultsMissed: 0,
    serviceKills: 0,
    databaseCrashes: 0,
    pauses: 0,
    restarts: 0,
    storeCrashes: 0,
    perInstance: [],
  };
  readonly observations: Observation[] = [];
  readonly applied: AppliedFault[] = [];
  private readonly locks = new Map<string, Promise<void>>();
  private readonly inFlight = new Set<Promise<void>>();
  private finished = false;
  private windingDown = false;
  private roundSize = 0;
  private readonly appliedByRound = new Map<number, number>();
  /** Faults queued or running, per target. */
  private readonly pending = new Map<string, number>();
  /** Several instances: moves the services' links off instances the runner takes down. */
  readonly router: InstanceRouter;

  constructor(
    private readonly t: BankTopology,
    private readonly o: InjectorOptions,
  ) {
    this.router = new InstanceRouter(t);
    this.counters.perInstance = t.multiInstance ? t.coordinators.map((c) => ({ name: c.name, kills: 0, crashPointKills: 0, pauses: 0, downPastLease: 0, pausedPastLease: 0 })) : [];
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
      let event = schedule.next();
      if (!(await sleepWhile(event.gapMs, keepGoing))) break;
      if (this.t.multiInstance && isInstanceFault(event.kind)) {
        const instance = await this.freeInstance(event.instance, keepGoing);
        if (instance === undefined) break;
        event = { ...event, instance };
      }
      const target = this.targetOf(event);
      const busy = this.locks.get(target);
      if (busy && !(await settledWhile(busy, keepGoing))) break;
      void this.serialized(target, () => this.apply(event));
    }
    // The traffic is over: armed crash points and disk faults stop waiting to be reached.
    this.windingDown = true;
    await this.settle();
  }

  /**
   * The instance a coordinator fault may hit: `wanted` if no fault of its own
   * is in flight, else another free one; and only while some other instance
   * has none either, so at least one instance is always left alive. Undefined
   * if the run ends first.
   */
  private async freeInstance(wanted: number, keepGoing: () => boolean): Promise<number | undefined> {
    const n = this.t.coordinators.length;
    for (;;) {
      if (!keepGoing()) return undefined;
      const free = this.t.coordinators.map((c) => c.index).filter((i) => !this.pending.get(this.t.coordinators[i].target));
      if (free.length >= 2) {
        for (let k = 0; k < n; k++) if (free.includes((wanted + k) % n)) return (wanted + k) % n;
      }
      await sleep(50);
    }
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
    const store = this.t.sharedLog;
    if (store) {
      await this.serialized('store', async () => {
        if (!store.running) await this.startStore();
      });
    }
    for (const [i, cluster] of this.t.clusters.entries()) {
      await this.serialized(`cluster:${i}`, async () => {
        if (!cluster.running) await this.startCluster(i);
      });
    }
    for (const p of this.t.processes) {
      await this.serialized(this.t.targetOf(p), async () => {
        if (!p.running) await this.restart(p);
      });
    }
    for (const c of this.t.coordinators) this.router.markUp(c.index);
  }

  /** No more restarts: the run is ending. */
  finish(): void {
    this.finished = true;
  }

  private targetOf(e: FaultEvent): string {
    if (e.kind === 'store-crash') return 'store';
    if (e.kind.startsWith('coordinator-') || e.kind.startsWith('disk-')) return this.t.coordinators[this.t.multiInstance ? e.instance : 0].target;
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
    this.pending.set(target, (this.pending.get(target) ?? 0) + 1);
    void run.finally(() => {
      this.inFlight.delete(run);
      this.pending.set(target, this.pending.get(target)! - 1);
    });
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
    const about = target.startsWith('coordinator') ? (this.t.multiInstance ? ` (${this.t.coordinators[e.instance].name})` : '') : target === 'store' ? '' : ledger ? ` (${ledger.name})` : '';
    this.o.log(`fault #${e.seq} ${e.kind} ${target}${about}: ${result}`);
  }

  private async applyKind(e: FaultEvent): Promise<string> {
    const node = this.t.coordinators[this.t.multiInstance ? e.instance : 0];
    const mine = this.counters.perInstance[node.index] as InstanceCounters | undefined;
    switch (e.kind) {
      case 'coordinator-kill': {
        // Past its lease: the instance's transactions must be taken over by another one, not by its restart.
        const downMs = e.pastLeaseMs ?? e.downMs;
        this.router.markDown(node.index);
        await this.killCoordinator(node);
        if (mine && e.pastLeaseMs !== undefined) mine.downPastLease += 1;
        await sleep(downMs);
        await this.restart(node.process);
        this.router.markUp(node.index);
        return `SIGKILL, down ${downMs} ms${e.pastLeaseMs !== undefined ? ' (past its lease)' : ''}`;
      }
      case 'coordinator-crash-point':
        return this.crashPoint(e, node);
      case 'disk-full':
      case 'disk-io-error':
        return this.diskFault(e);
      case 'store-crash':
        return this.storeCrash(e);
      case 'coordinator-pause':
      case 'service-pause': {
        const p = e.kind === 'coordinator-pause' ? node.process : this.t.ledgers[e.target].service;
        if (e.kind === 'coordinator-pause') this.router.markDown(node.index);
        if (!p.pause()) {
          if (e.kind === 'coordinator-pause') this.router.markUp(node.index);
          return 'skipped: not running';
        }
        this.counters.pauses += 1;
        if (e.kind === 'coordinator-pause' && mine) mine.pauses += 1;
        const pauseMs = e.kind === 'coordinator-pause' ? (e.pastLeaseMs ?? e.durationMs) : e.durationMs;
        if (e.kind === 'coordinator-pause' && mine && e.pastLeaseMs !== undefined) mine.pausedPastLease += 1;
        await sleep(pauseMs);
        p.resume();
        if (e.kind === 'coordinator-pause' && this.t.multiInstance) {
          // Paused past its lease it is fenced and registers again: links go back once it is ready.
          await waitReady(node.api, 10_000);
          this.router.markUp(node.index);
        }
        return `SIGSTOP for ${pauseMs} ms${pauseMs !== e.durationMs ? ' (past its lease)' : ''}`;
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

  /**
   * A shared log's server crashes (SIGKILL of the redis-server, immediate
   * stop of the PostgreSQL cluster) and comes back after `downMs`. The
   * instances must ride it out: retry, maybe go unready, never lose an
   * acknowledged decision.
   */
  private async storeCrash(e: FaultEvent): Promise<string> {
    const store = this.t.sharedLog;
    if (!store) return 'skipped: no shared log';
    if (!store.running) return 'skipped: not running';
    await store.crash();
    this.counters.storeCrashes += 1;
    await sleep(e.downMs);
    await this.startStore();
    return `${store.kind === 'redis' ? 'SIGKILL' : 'immediate stop'} of the ${store.label}, down ${e.downMs} ms`;
  }

  private async startStore(): Promise<void> {
    const store = this.t.sharedLog!;
    const deadline = Date.now() + this.o.restartTimeoutMs;
    for (;;) {
      try {
        await store.start();
        return;
      } catch (e) {
        if (Date.now() > deadline) {
          this.observe('restart-failed', false, `the ${store.label} could not be started again: ${e instanceof Error ? e.message.slice(0, 2_000) : String(e)}`);
          return;
        }
        await sleep(500);
      }
    }
  }

  /** SIGKILL, then checks the log as a restart will read it. */
  private async killCoordinator(node: CoordinatorNode = this.t.coordinators[0]): Promise<void> {
    if (await node.process.kill()) {
      this.counters.coordinatorKills += 1;
      const mine = this.counters.perInstance[node.index] as InstanceCounters | undefined;
      if (mine) mine.kills += 1;
    }
    await this.verifyLogOpens('after SIGKILL');
  }

  private async crashPoint(e: FaultEvent, node: CoordinatorNode): Promise<string> {
    const { point, hit } = e.crashAt;
    const coordinator = node.process;
    const mine = this.counters.perInstance[node.index] as InstanceCounters | undefined;
    this.router.markDown(node.index);
    await this.killCoordinator(node);
    const armed = await this.startArmed({ [CRASH_ENV]: `${point}:${hit}` }, () => coordinator.lastExit?.signal === 'SIGKILL', node);
    let result: string;
    if (armed === 'failed') {
      result = `could not restart armed at ${point}:${hit}`;
    } else if (armed === 'fired-in-recovery') {
      this.counters.crashPointKills += 1;
      this.counters.crashPointKillsAt[point] = (this.counters.crashPointKillsAt[point] ?? 0) + 1;
      if (mine) mine.crashPointKills += 1;
      this.counters.firedInRecovery += 1;
      await this.verifyLogOpens(`after crash point ${point} in recovery`);
      result = `killed itself at ${point}:${hit} while recovering`;
    } else {
      // Armed and serving: it takes traffic again until it kills itself.
      this.router.markUp(node.index);
      const exit = await this.waitArmed(coordinator);
      this.router.markDown(node.index);
      if (exit?.signal === 'SIGKILL') {
        this.counters.crashPointKills += 1;
        this.counters.crashPointKillsAt[point] = (this.counters.crashPointKillsAt[point] ?? 0) + 1;
        if (mine) mine.crashPointKills += 1;
        await this.verifyLogOpens(`after crash point ${point}`);
        result = `killed itself at ${point}:${hit}`;
      } else {
        if (exit) this.observe('unexpected-exit', false, `coordinator armed at ${point}:${hit} exited with ${exit.signal ?? `code ${exit.code}`}:\n${coordinator.tail(1_500)}`);
        this.counters.crashPointsMissed += 1;
        await this.killCoordinator(node);
        result = `${point}:${hit} not reached in ${this.o.armedWindowMs} ms; SIGKILLed`;
      }
    }
    await sleep(e.downMs);
    await this.restart(coordinator);
    this.router.markUp(node.index);
    return result;
  }

  /**
   * Starts the coordinator armed with a crash point or a disk fault. The armed
   * fault may fire while it recovers, before it is ready (recovery resumes
   * phase 2 and writes records): then every armed start would fire it again,
   * so that counts as fired, and the caller starts it unarmed. Other failed
   * starts (a database still down) are retried.
   */
  private async startArmed(env: Record<string, string>, fired: () => boolean, node: CoordinatorNode = this.t.coordinators[0]): Promise<'ready' | 'fired-in-recovery' | 'failed'> {
    const coordinator = node.process;
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
    // A shared log has no files of the coordinator's: what a crash leaves is the store's business (and the checker's).
    if (this.t.sharedLog) return;
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
    void this.serialized(this.t.targetOf(p), async () => {
      if (!p.running) await this.restart(p);
    });
  }

  private observe(kind: Observation['kind'], violation: boolean, detail: string): void {
    this.observations.push({ at: Date.now(), kind, violation, detail });
    this.o.log(`${violation ? 'VIOLATION' : 'anomaly'} (${kind}): ${detail.split('\n')[0]}`);
  }
}

/** The kinds that hit one coordinator instance. */
function isInstanceFault(kind: FaultKind): boolean {
  return kind === 'coordinator-kill' || kind === 'coordinator-crash-point' || kind === 'coordinator-pause';
}

/** Waits (at most `timeoutMs`) until `api` answers /readyz 200. */
async function waitReady(api: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await fetchStatus(`${api}/readyz`, 'GET')) === 200) return true;
    await sleep(100);
  }
  return false;
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
