import type { ChildProcess } from 'node:child_process';
import { forkLoadProgram, nextMessage, stopChild } from './child-processes';
import type { FromWorker, LoadStep, PhaseTick, ToWorker, WorkerConfig } from './worker-protocol';

/** What the workers report each second, together. */
export interface WorkersTick {
  ticks: PhaseTick[];
}

/** Splits `total` into `parts` integers that differ by at most one. */
function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

/**
 * The load generator: `count` forked workers sharing the clients. A run is a
 * program of steps every worker follows, started at the same instant.
 *
 * @example
 * const workers = await LoadWorkers.start(runDir, 4, { ...config, clients: 1000 });
 * await workers.run([{ phase: 'load', action: 'commit', seconds: 60 }]);
 */
export class LoadWorkers {
  private readonly tickListeners: Array<(ticks: PhaseTick[]) => void> = [];
  private readonly state: Array<{ held: number; inFlight: number; lagMaxMs: number }>;
  /** The generator's own worst event-loop delay (a check that it did not starve), ms. */
  maxLagMs = 0;
  private runId = 0;

  private constructor(
    private readonly children: ChildProcess[],
    readonly clients: number[],
  ) {
    this.state = children.map(() => ({ held: 0, inFlight: 0, lagMaxMs: 0 }));
    children.forEach((child, i) =>
      child.on('message', (m: FromWorker) => {
        if (m.type !== 'tick') return;
        this.state[i] = { held: m.held, inFlight: m.inFlight, lagMaxMs: m.lagMaxMs };
        this.maxLagMs = Math.max(this.maxLagMs, m.lagMaxMs);
        if (m.ticks.length > 0) for (const l of this.tickListeners) l(m.ticks);
      }),
    );
  }

  static async start(runDir: string, count: number, config: WorkerConfig): Promise<LoadWorkers> {
    const clients = split(config.clients, count).filter((n) => n > 0);
    const children = clients.map(() => forkLoadProgram('load-worker', runDir));
    try {
      await Promise.all(
        children.map((child, i) => {
          const ready = nextMessage(child, `load worker ${i + 1}`, (m: FromWorker) => (m.type === 'ready' ? true : undefined));
          child.send({ type: 'init', config: { ...config, clients: clients[i] } } satisfies ToWorker);
          return ready;
        }),
      );
    } catch (e) {
      await Promise.all(children.map((c) => stopChild(c)));
      throw e;
    }
    return new LoadWorkers(children, clients);
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  /** Transactions held open by `open` steps, as of the last tick. */
  get held(): number {
    return this.state.reduce((n, s) => n + s.held, 0);
  }

  get inFlight(): number {
    return this.state.reduce((n, s) => n + s.inFlight, 0);
  }

  onTicks(listener: (ticks: PhaseTick[]) => void): void {
    this.tickListeners.push(listener);
  }

  /**
   * Runs the steps on every worker (quota and rate are totals, split among
   * the workers), all starting `startInMs` from now; resolves when all are done.
   */
  async run(steps: LoadStep[], startInMs = 100): Promise<void> {
    const runId = ++this.runId;
    const startAt = Date.now() + startInMs;
    await Promise.all(
      this.children.map((child, i) => {
        const own = steps.map((s) => ({
          ...s,
          ...(s.quota === undefined ? {} : { quota: split(s.quota, this.children.length)[i] }),
          ...(s.rate === undefined ? {} : { rate: s.rate / this.children.length }),
        }));
        const done = nextMessage(child, `load worker ${i + 1}`, (m: FromWorker) => (m.type === 'done' && m.runId === runId ? m : undefined), 24 * 3600_000).then((m) => {
          this.state[i].held = m.held;
        });
        child.send({ type: 'run', runId, startAt, steps: own } satisfies ToWorker);
        return done;
      }),
    );
  }

  /** Ends the current run early: clients finish the cycle in flight and stop. */
  stop(): void {
    for (const child of this.children) if (child.connected) child.send({ type: 'stop' } satisfies ToWorker);
  }

  async close(): Promise<void> {
    await Promise.all(this.children.map((c) => stopChild(c)));
  }
}
