import type { Pool } from 'pg';
import type { BenchMode, ModeContext, ModeRunner } from './bench-mode';
import type { BenchOptions } from './bench-options';
import type { BankClusters } from './bank-clusters';
import { LatencyRecorder } from './latency-recorder';
import { probePool } from './profile/pool-probe';
import { Tally } from './profile/tally';
import type { RunResult } from './run-workers';
import type { Ledger } from './transfer-plan';

/** Everything measured for one mode, over every round. */
export interface ModeTotals {
  name: string;
  transfers: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  latencies: LatencyRecorder;
  /** tps of each round, to show the noise. */
  roundTps: number[];
  /** CPU of this Node process per transfer, ms. */
  processCpuMsPerTransfer: number;
  /** Mean share of the machine's CPU in use during the measured runs (undefined off Linux). */
  machineBusy?: number;
  /** CPU of the bench's PostgreSQL servers per transfer, ms (undefined off Linux). */
  postgresCpuMsPerTransfer?: number;
}

/** One mode set up for the whole bench: its runner, the pools it was given, its profile and its results. */
export class ModeSession {
  readonly results: RunResult[] = [];
  private closing?: Promise<void>;

  private constructor(
    readonly mode: BenchMode,
    readonly runner: ModeRunner,
    private readonly pools: Pool[],
    readonly tally?: Tally,
  ) {}

  static async open(mode: BenchMode, clusters: BankClusters, options: BenchOptions): Promise<ModeSession> {
    const pools: Pool[] = [];
    const tally = options.profile ? new Tally() : undefined;
    const ctx: ModeContext = {
      options,
      tally,
      pool: (ledger: Ledger) => {
        const pool = clusters.pool(ledger, options.poolSize);
        if (tally) probePool(pool, tally, ledger);
        pools.push(pool);
        return pool;
      },
      tempDir: (name) => clusters.tempDir(`${mode.name}-${name}`),
    };
    try {
      return new ModeSession(mode, await mode.setup(ctx), pools, tally);
    } catch (e) {
      await Promise.allSettled(pools.map((p) => p.end()));
      throw e;
    }
  }

  totals(): ModeTotals {
    const latencies = new LatencyRecorder();
    for (const r of this.results) latencies.addAll(r.latencies);
    const transfers = sum(this.results.map((r) => r.transfers));
    const busy = this.results.map((r) => r.cpu.machineBusy).filter((b): b is number => b !== undefined);
    return {
      name: this.mode.name,
      transfers,
      errors: sum(this.results.map((r) => r.errors)),
      firstError: this.results.find((r) => r.firstError)?.firstError,
      elapsedMs: sum(this.results.map((r) => r.elapsedMs)),
      latencies,
      roundTps: this.results.map((r) => (r.transfers * 1000) / r.elapsedMs),
      processCpuMsPerTransfer: sum(this.results.map((r) => r.cpu.processMs)) / Math.max(transfers, 1),
      ...(busy.length > 0 ? { machineBusy: sum(busy) / busy.length } : {}),
      ...(this.results.every((r) => r.cpu.postgresMs !== undefined) ? { postgresCpuMsPerTransfer: sum(this.results.map((r) => r.cpu.postgresMs ?? 0)) / Math.max(transfers, 1) } : {}),
    };
  }

  /** Closes the runner, then its pools. Safe to call twice (normal end, then cleanup). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.runner.close();
      } finally {
        await Promise.allSettled(this.pools.map((p) => p.end()));
      }
    })();
    return this.closing;
  }
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
