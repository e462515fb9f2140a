import { errorMessage } from '../coordinator/engine/ports/protocol';
import { LatencyRecorder } from './latency-recorder';
import { CpuSample, cpuMark } from './profile/cpu-meter';
import type { BankTransfer } from './transfer-plan';

export interface RunResult {
  transfers: number;
  errors: number;
  firstError?: string;
  /** From the first start to the last completion, ms. */
  elapsedMs: number;
  latencies: LatencyRecorder;
  cpu: CpuSample;
}

export interface RunSpec {
  transfer: (t: BankTransfer) => Promise<void>;
  next: () => BankTransfer;
  concurrency: number;
  durationMs: number;
  signal: AbortSignal;
  /** Data directories of the PostgreSQL servers whose CPU is metered with the run. */
  postgresDataDirs?: readonly string[];
}

/**
 * `concurrency` workers, each making one transfer after another until the
 * duration is up (a closed loop: throughput is what the mode can sustain at
 * that concurrency). Transfers in flight at the deadline are finished and
 * counted, and the elapsed time includes them.
 */
export async function runWorkers(spec: RunSpec): Promise<RunResult> {
  const latencies = new LatencyRecorder();
  const result: RunResult = { transfers: 0, errors: 0, elapsedMs: 0, latencies, cpu: { processMs: 0 } };
  const cpu = cpuMark(spec.postgresDataDirs);
  const started = performance.now();
  const deadline = started + spec.durationMs;
  const worker = async () => {
    while (performance.now() < deadline && !spec.signal.aborted) {
      const t = spec.next();
      const begun = performance.now();
      try {
        await spec.transfer(t);
        latencies.add(performance.now() - begun);
        result.transfers += 1;
      } catch (e) {
        result.errors += 1;
        result.firstError ??= errorMessage(e);
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  result.elapsedMs = performance.now() - started;
  result.cpu = cpu();
  return result;
}
