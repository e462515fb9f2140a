import { Histogram } from './histogram';
import type { LogDirStats } from './proc-stats';
import type { StubCounts } from './stub-protocol';
import type { PhaseTick } from './worker-protocol';

/** What a `/metrics` scrape said (the ones the report uses). */
export interface PromSample {
  scrapeMs: number;
  lagP99Ms?: number;
  lagMaxMs?: number;
  live?: number;
  inDoubt?: number;
  heapUsedMiB?: number;
  phaseTwoRetries?: number;
}

/** Everything known about one wall-clock second of a run. */
export interface Second {
  epoch: number;
  phase: string;
  rssKiB?: number;
  /** CPU the coordinator used in this second, % of one core. */
  cpuPct?: number;
  load1?: number;
  logDir?: LogDirStats;
  probe: Histogram;
  probeErrors: number;
  prom?: PromSample;
  /** Requests and cycles completed in this second (`<op> <status>`, `tx <outcome>`). */
  latency: Map<string, Histogram>;
  errors: Map<string, number>;
  leaks: number;
  stubs?: StubCounts[];
  /** Coordinator log lines by level. */
  logLines: Map<string, number>;
}

export interface PhaseTotals {
  latency: Map<string, Histogram>;
  errors: Map<string, number>;
  leaks: number;
  leakSample?: string;
}

export interface PhaseSpan {
  name: string;
  start: number;
  end?: number;
}

function mergeInto(map: Map<string, Histogram>, key: string, h: Parameters<Histogram['merge']>[0]): void {
  let own = map.get(key);
  if (!own) map.set(key, (own = new Histogram()));
  own.merge(h);
}

/**
 * The run's measurements, by second and by phase: filled by the sampler, the
 * load workers, the stubs and the coordinator's log; read by the reports.
 */
export class Timeline {
  readonly seconds = new Map<number, Second>();
  readonly phaseTotals = new Map<string, PhaseTotals>();
  readonly phases: PhaseSpan[] = [];
  readonly startedAt = Date.now();

  /** Starts a phase of the run (the load workers label their requests with the same names). */
  phase(name: string): void {
    const now = Date.now();
    const last = this.phases.at(-1);
    if (last && last.end === undefined) last.end = now;
    this.phases.push({ name, start: now });
  }

  endPhases(): void {
    const last = this.phases.at(-1);
    if (last && last.end === undefined) last.end = Date.now();
  }

  currentPhase(): string {
    return this.phases.at(-1)?.name ?? 'start';
  }

  second(epoch: number): Second {
    let s = this.seconds.get(epoch);
    if (!s) {
      s = { epoch, phase: this.phaseAt(epoch * 1000 + 999), probe: new Histogram(), probeErrors: 0, latency: new Map(), errors: new Map(), leaks: 0, logLines: new Map() };
      this.seconds.set(epoch, s);
    }
    return s;
  }

  private phaseAt(ms: number): string {
    for (let i = this.phases.length - 1; i >= 0; i--) if (this.phases[i].start <= ms) return this.phases[i].name;
    return 'start';
  }

  addTicks(ticks: PhaseTick[]): void {
    for (const t of ticks) {
      const s = this.second(t.second);
      let totals = this.phaseTotals.get(t.phase);
      if (!totals) this.phaseTotals.set(t.phase, (totals = { latency: new Map(), errors: new Map(), leaks: 0 }));
      for (const [key, h] of Object.entries(t.latency)) {
        mergeInto(s.latency, key, h);
        mergeInto(totals.latency, key, h);
      }
      for (const [kind, n] of Object.entries(t.errors)) {
        s.errors.set(kind, (s.errors.get(kind) ?? 0) + n);
        totals.errors.set(kind, (totals.errors.get(kind) ?? 0) + n);
      }
      s.leaks += t.leaks;
      totals.leaks += t.leaks;
      totals.leakSample ??= t.leakSample;
    }
  }

  addProbe(latencyUs: number | undefined, at: number): void {
    const s = this.second(Math.floor(at / 1000));
    if (latencyUs === undefined) s.probeErrors += 1;
    else s.probe.record(latencyUs);
  }

  addLogLine(level: string): void {
    const s = this.second(Math.floor(Date.now() / 1000));
    s.logLines.set(level, (s.logLines.get(level) ?? 0) + 1);
  }

  /** Seconds from `fromMs` to `toMs` (whole seconds inside the range), in order. */
  range(fromMs: number, toMs: number): Second[] {
    const out: Second[] = [];
    for (let e = Math.ceil(fromMs / 1000); e < Math.floor(toMs / 1000); e++) out.push(this.second(e));
    return out;
  }

  span(name: string): PhaseSpan | undefined {
    return this.phases.find((p) => p.name === name);
  }

  /** The seconds of a phase, optionally without its first `skipSeconds`. */
  phaseSeconds(name: string, skipSeconds = 0): Second[] {
    const p = this.span(name);
    if (!p) return [];
    return this.range(p.start + skipSeconds * 1000, p.end ?? Date.now());
  }

  /** Completed cycles (`tx <outcome>`) or requests (`<op> <status>`) in one second whose key starts with `prefix`. */
  static count(s: Second, prefix: string): number {
    let n = 0;
    for (const [key, h] of s.latency) if (key.startsWith(prefix)) n += h.count;
    return n;
  }
}
