import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EngineObserver } from '../engine/engine-observer';

/** Gauges read from the engine when scraped. */
export interface EngineGauges {
  /** Transactions with a decision whose phase 2 is still running here. */
  inDoubt(): number;
  /** Transactions begun here and not yet ended. */
  live(): number;
  /** Unfinished transactions with a heuristic hazard (they wait for an operator). */
  withHazards?(): Promise<number>;
  /** Several instances on a shared log: whether this process holds its lease now. */
  holdsLease?(): boolean;
  /** Whether the engine takes work: recovery done, the log writable, the lease held (what /readyz answers). */
  ready?(): boolean;
  /** Whether the decision log refuses every write for good (file log: disk full, I/O error) until a restart. */
  logFailed?(): boolean;
  /**
   * When the oldest in-doubt transaction (preparing, or decided with phase 2
   * not finished) began, in epoch ms; undefined when there is none. Rejects
   * when the log cannot be read. Called when scraped, so it must be cheap:
   * never a listing of every live transaction.
   */
  oldestInDoubtSince?(): Promise<number | undefined>;
  /** What the decision log holds in memory (file log): transactions in full, and completed ones as outcome records only. */
  held?(): { inFull: number; outcomes: number } | undefined;
  /** The HTTP admission queue (service/admission.ts): transaction requests being served, and waiting their turn. */
  requests?(): { inProgress: number; queued: number };
}

/** Events of an instance among several on a shared log. */
export interface ClusterObserver {
  /** Leases of other instances taken over (their transactions are this instance's now). */
  tookOver(leases: number): void;
  /** This process lost its lease (taken over, or not renewed in time). */
  fenced(): void;
  /** A request for another instance's transaction: relayed to it, or refused because it could not be reached. */
  relayed(outcome: 'relayed' | 'owner-unavailable'): void;
}

/** Prometheus metrics of one coordinator instance (its own registry: no global state). */
export class CoordinatorMetrics {
  readonly registry = new Registry();
  readonly observer: EngineObserver;
  readonly cluster: ClusterObserver;
  /** Counts and times every HTTP request by route pattern (never by raw path: ids would explode the label set). */
  readonly httpMiddleware: RequestHandler;
  /**
   * Records one request as `httpMiddleware` does, for a server path that
   * bypasses express: `route` is the route pattern that answered (undefined:
   * none did, e.g. refused before routing), `startedAt` from `process.hrtime.bigint()`.
   */
  readonly observeRequest: (route: string | undefined, method: string, status: number, startedAt: bigint) => void;

  constructor(gauges: EngineGauges) {
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    const ended = new Counter({ name: 'twopc_transactions_total', help: 'Transactions ended, by outcome', labelNames: ['outcome'], registers });
    const phase = new Histogram({
      name: 'twopc_phase_seconds',
      help: 'Latency of protocol phases',
      labelNames: ['phase'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    const retries = new Counter({ name: 'twopc_phase_two_retries_total', help: 'Phase-2 attempts that were not acknowledged', labelNames: ['participant'], registers });
    const hazards = new Counter({ name: 'twopc_heuristic_hazards_total', help: 'Heuristic hazards recorded', labelNames: ['participant'], registers });
    new Gauge({ name: 'twopc_in_doubt', help: 'Transactions this instance is still driving through phase 2', registers, collect() { this.set(gauges.inDoubt()); } });
    const withHazards = gauges.withHazards;
    if (withHazards) {
      new Gauge({
        name: 'twopc_transactions_with_hazards',
        help: 'Unfinished transactions with a heuristic hazard: each waits for an operator (twopc list --state heuristic)',
        registers,
        async collect() {
          // A scrape must not fail because the log is briefly unreadable (starting, stopping).
          this.set(await withHazards().catch(() => 0));
        },
      });
    }
    const holdsLease = gauges.holdsLease;
    if (holdsLease) {
      new Gauge({ name: 'twopc_lease_held', help: 'Several instances on a shared log: 1 while this instance holds its lease (0: fenced, or the store unreachable past the lease)', registers, collect() { this.set(holdsLease() ? 1 : 0); } });
    }
    const takeovers = new Counter({ name: 'twopc_lease_takeovers_total', help: 'Leases of other instances (dead, or restarted under this name) taken over by this one', registers });
    const fenced = new Counter({ name: 'twopc_lease_lost_total', help: 'Times this process lost its lease (taken over while paused or cut off) and registered a new one', registers });
    const relayed = new Counter({ name: 'twopc_relayed_requests_total', help: "Requests for another instance's transaction: relayed to its owner, or answered owner-unavailable", labelNames: ['outcome'], registers });
    this.cluster = {
      tookOver: (n) => takeovers.inc(n),
      fenced: () => fenced.inc(),
      relayed: (outcome) => relayed.inc({ outcome }),
    };
    const ready = gauges.ready;
    if (ready) {
      new Gauge({ name: 'twopc_ready', help: '1 while this instance takes work (recovery done, decision log writable, lease held): what /readyz answers', registers, collect() { this.set(ready() ? 1 : 0); } });
    }
    const logFailed = gauges.logFailed;
    if (logFailed) {
      new Gauge({ name: 'twopc_decision_log_failed', help: '1 once the decision log refuses every write for good (disk full, I/O error): no new work until a restart', registers, collect() { this.set(logFailed() ? 1 : 0); } });
    }
    const oldestInDoubtSince = gauges.oldestInDoubtSince;
    if (oldestInDoubtSince) {
      new Gauge({
        name: 'twopc_oldest_in_doubt_seconds',
        help: 'Seconds since the oldest in-doubt transaction (preparing, or decided with phase 2 unfinished) began; 0: none; NaN: the log cannot be read now (twopc list --state in-doubt)',
        registers,
        async collect() {
          // NaN, not 0, when the log cannot be read: "none in doubt" would be a claim we cannot make.
          const since = await oldestInDoubtSince().catch(() => NaN);
          this.set(since === undefined ? 0 : Math.max(0, (Date.now() - since) / 1000));
        },
      });
    }
    const held = gauges.held;
    if (held) {
      new Gauge({
        name: 'twopc_log_held_transactions',
        help: 'Transactions the decision log holds in memory: `in-full` (running, or completed and kept whole) and `outcome` (completed, only how and when they ended, ~35 bytes each) (file log)',
        labelNames: ['form'],
        registers,
        collect() {
          const h = held();
          this.set({ form: 'in-full' }, h?.inFull ?? 0);
          this.set({ form: 'outcome' }, h?.outcomes ?? 0);
        },
      });
    }
    const requestsNow = gauges.requests;
    if (requestsNow) {
      new Gauge({
        name: 'twopc_http_transaction_requests',
        help: 'Transaction requests (/v1 outside /v1/admin): `in-progress` being served, `queued` waiting their turn (http.maxRequestsInProgress); twopc_http_request_seconds counts from a request\'s start, not its arrival',
        labelNames: ['state'],
        registers,
        collect() {
          const r = requestsNow();
          this.set({ state: 'in-progress' }, r.inProgress);
          this.set({ state: 'queued' }, r.queued);
        },
      });
    }
    new Gauge({ name: 'twopc_live_transactions', help: 'Transactions begun on this instance and not yet ended', registers, collect() { this.set(gauges.live()); } });
    const requests = new Histogram({
      name: 'twopc_http_request_seconds',
      help: 'HTTP requests served, by route pattern, method and status',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.observer = {
      transactionEnded: (outcome) => ended.inc({ outcome }),
      phaseLatency: (name, ms) => phase.observe({ phase: name }, ms / 1000),
      phaseTwoRetry: (participant) => retries.inc({ participant }),
      hazard: (_txId, participant) => hazards.inc({ participant }),
    };
    this.observeRequest = (route, method, status, startedAt) => {
      const known = KNOWN_METHODS.has(method) ? method : 'OTHER';
      requests.observe({ route: route ?? 'unmatched', method: known, status: String(status) }, Number(process.hrtime.bigint() - startedAt) / 1e9);
    };
    this.httpMiddleware = (req, res, next) => {
      const started = process.hrtime.bigint();
      res.once('finish', () => {
        const route: unknown = req.route?.path;
        this.observeRequest(typeof route === 'string' ? route : undefined, req.method, res.statusCode, started);
      });
      next();
    };
  }
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
