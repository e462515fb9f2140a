import type { HistogramData } from './histogram';

/** What one load step makes each client do, over and over. */
export const STEP_ACTIONS = ['commit', 'abort', 'open', 'abort-held'] as const;
export type StepAction = (typeof STEP_ACTIONS)[number];

/**
 * One step of a worker's program. `commit`: begin, enlist every participant,
 * commit. `abort`: the same, then abort. `open`: begin and enlist, then keep
 * the transaction active (held) until `quota` are open. `abort-held`: abort
 * the held transactions. A step ends after `seconds`, or when its quota is
 * reached / nothing is left to abort.
 */
export interface LoadStep {
  /** Label of every request of a cycle started in this step (phases of the report). */
  phase: string;
  action: StepAction;
  seconds?: number;
  /** `open`: transactions to open, for this worker. */
  quota?: number;
  /** Open loop: cycles started per second by this worker (clients then cap the cycles in flight). Closed loop when unset. */
  rate?: number;
}

/** A worker's fixed settings. */
export interface WorkerConfig {
  baseUrl: string;
  token: string;
  /** Closed-loop clients of this worker; each keeps one cycle in flight (and one kept-alive connection). */
  clients: number;
  participants: Array<{ name: string; url: string }>;
  prepare: 'held' | 'eager';
  /** `timeoutMs` of each begin; the coordinator's default when unset. */
  txTimeoutMs?: number;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  /** Strings that must not appear in what API clients are told (the stubs' addresses). */
  leakNeedles: string[];
}

/** What completed in one second of one phase, in one worker. */
export interface PhaseTick {
  /** Epoch second in which the requests completed. */
  second: number;
  phase: string;
  /** `<op> <status>` (or `<op> <error kind>`) → latency histogram, µs. Ops: begin, enlist, commit, abort, and `tx` for whole cycles. */
  latency: Record<string, HistogramData>;
  /** Transport errors and other client-side events by kind. */
  errors: Record<string, number>;
  /** Answers that carried a participant's address. */
  leaks: number;
  leakSample?: string;
}

export type ToWorker =
  | { type: 'init'; config: WorkerConfig }
  | { type: 'run'; runId: number; startAt: number; steps: LoadStep[] }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'tick'; ticks: PhaseTick[]; held: number; inFlight: number; lagMaxMs: number }
  | { type: 'done'; runId: number; held: number };
