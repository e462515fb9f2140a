import type { Outcome } from './ports/types';

/** Hooks for metrics. Every method is optional; the engine never depends on an observer's answer. */
export interface EngineObserver {
  transactionEnded?(outcome: Outcome | 'read-only' | 'one-phase', durationMs: number): void;
  phaseLatency?(phase: 'prepare' | 'decide' | 'phase-two', durationMs: number): void;
  phaseTwoRetry?(participant: string): void;
  hazard?(txId: string, participant: string): void;
}
