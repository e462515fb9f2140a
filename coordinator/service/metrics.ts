import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EngineObserver } from '../engine/engine-observer';

/** Prometheus metrics of one coordinator instance (its own registry: no global state). */
export class CoordinatorMetrics {
  readonly registry = new Registry();
  readonly observer: EngineObserver;

  constructor(inDoubt: () => number) {
    collectDefaultMetrics({ register: this.registry });
    const ended = new Counter({ name: 'twopc_transactions_total', help: 'Transactions ended, by outcome', labelNames: ['outcome'], registers: [this.registry] });
    const phase = new Histogram({
      name: 'twopc_phase_seconds',
      help: 'Latency of protocol phases',
      labelNames: ['phase'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    });
    const retries = new Counter({ name: 'twopc_phase_two_retries_total', help: 'Phase-2 attempts that were not acknowledged', labelNames: ['participant'], registers: [this.registry] });
    const hazards = new Counter({ name: 'twopc_heuristic_hazards_total', help: 'Heuristic hazards recorded', labelNames: ['participant'], registers: [this.registry] });
    new Gauge({ name: 'twopc_in_doubt', help: 'Transactions this instance is still driving', registers: [this.registry], collect() { this.set(inDoubt()); } });
    this.observer = {
      transactionEnded: (outcome) => ended.inc({ outcome }),
      phaseLatency: (name, ms) => phase.observe({ phase: name }, ms / 1000),
      phaseTwoRetry: (participant) => retries.inc({ participant }),
      hazard: (_txId, participant) => hazards.inc({ participant }),
    };
  }
}
