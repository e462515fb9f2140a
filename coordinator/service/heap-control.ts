import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Bounds V8's heap headroom from inside `twopc serve`, without NODE_OPTIONS
 * or a wrapper process (crash tests SIGKILL the coordinator's own pid).
 *
 * V8 reads `--heap-growing-percent` at every full collection, so setting it
 * at startup takes effect (unlike `--max-old-space-size` and
 * `--max-semi-space-size`, fixed when the heap is created): after each full
 * collection the old generation may grow to live × (1 + percent / 100)
 * before the next one. V8's own factor lets a heap under a high allocation
 * rate grow to several times what is live (BENCHMARKS.md, "Under load").
 */
export function applyHeapGrowingPercent(percent: number): void {
  if (percent > 0) v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}

/**
 * V8's full collection, made callable once (the same way jest's leak detector
 * gets it), that also compacts the old generation. A plain full collection
 * frees the dead objects but evacuates only the pages V8's heuristics pick:
 * after a load, pages that still hold a few long-lived objects (outcomes, the
 * transactions still running) among the garbage stay committed, and RSS with
 * them (a 20-line script: old space 93 MiB committed for 9 MiB live after
 * `gc()`, 10 MiB with compaction). Compaction is turned on for this one
 * collection only: it moves every live object, which costs more than the
 * collection itself and is worth it only when nothing else is running.
 */
export function fullCollection(): () => void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  return () => {
    v8.setFlagsFromString('--compact-on-every-full-gc');
    try {
      gc();
    } finally {
      v8.setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}

/** Holds the young generation small while idle; lets it grow again when work resumes. */
export interface YoungGenerationCap {
  cap(): void;
  uncap(): void;
}

const GROWTH_FLAG = '--semi-space-growth-factor';
// V8's default (node --v8-options).
const DEFAULT_GROWTH_FACTOR = 2;

/**
 * Stops the young generation from growing while the coordinator is idle.
 * After a load it holds 32 MiB (two 16-MiB semi-spaces); V8's memory reducer
 * shrinks it to a few MiB about half a minute into the idle, but the idle
 * coordinator still allocates (health probes, metrics scrapes, the log's
 * timers), and every scavenge's survivors count towards growing it again:
 * back to 32 MiB within 15 s, which was the whole of RSS's climb from 118 to
 * 150 MiB in an idle `npm run load` (BENCHMARKS.md issue 16). V8 reads its
 * growth factor each time it grows the space, so a factor of 1 while idle
 * keeps it at whatever size the reducer left; `uncap` restores the factor
 * (the one given on the command line or in NODE_OPTIONS, else V8's default)
 * and the space grows back under load as before. `--max-semi-space-size`
 * would cap it for good, but is fixed when the heap is created.
 */
export function youngGenerationCap(argv: readonly string[] = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]): YoungGenerationCap {
  const restore = growthFactorIn(argv) ?? DEFAULT_GROWTH_FACTOR;
  return {
    cap: () => v8.setFlagsFromString(`${GROWTH_FLAG}=1`),
    uncap: () => v8.setFlagsFromString(`${GROWTH_FLAG}=${restore}`),
  };
}

/** The last `--semi-space-growth-factor` given (either spelling: V8 takes `_` for `-`), if any. */
export function growthFactorIn(argv: readonly string[]): number | undefined {
  let found: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i].replaceAll('_', '-');
    if (arg === GROWTH_FLAG && i + 1 < argv.length) found = Number(argv[i + 1]);
    else if (arg.startsWith(`${GROWTH_FLAG}=`)) found = Number(arg.slice(GROWTH_FLAG.length + 1));
  }
  return found !== undefined && Number.isInteger(found) && found >= 1 ? found : undefined;
}

const DEFAULT_REGROW_BYTES = 8 * 1024 * 1024;

export interface IdleCollectorOptions {
  /** No new request for this long after some work: collect once. */
  idleMs: number;
  /** How many requests have started so far (a counter that only grows). */
  started(): number;
  collect(): void;
  /**
   * Run before the idle period's first collection, which waits for it: work
   * the idle coordinator would do soon anyway and that allocates (`twopc
   * serve`: the file log's compaction of the last burst, a snapshot of every
   * kept outcome), so the collection gives that back too instead of RSS
   * climbing again seconds after it. Its failure is the caller's to report.
   */
  prepare?(): Promise<unknown>;
  /**
   * The process's memory now (bytes; `twopc serve`: RSS). While the idle
   * period lasts, a collection is repeated once this has grown `regrowBytes`
   * above the lowest reading since the last one. Absent: one collection per
   * idle period.
   */
  footprint?(): number;
  /** Growth that repeats the collection while idle; default 8 MiB (a second collection about `idleMs` after the first, when the allocation rate is low enough for V8 to shrink the young generation). */
  regrowBytes?: number;
  /**
   * Capped after each idle collection, uncapped as soon as a check sees work
   * again (or the collector stops): see youngGenerationCap.
   */
  youngGeneration?: YoungGenerationCap;
  /** Injected so tests can drive it: the interval between checks. */
  every?: (check: () => void, ms: number) => { stop(): void };
}

/**
 * One full collection when the coordinator goes idle. V8's memory reducer
 * gives committed heap pages back only slowly (RSS stayed at 215–290 MiB for
 * two idle minutes after a load whose live heap was 50 MiB); one collection
 * returns them at once. It runs after the last request of a burst, never
 * during steady work. While the idle lasts, it runs again (at most once per
 * `idleMs`) when the footprint has grown `regrowBytes` since the lowest
 * reading after the last collection: an idle coordinator still allocates
 * (the file log compacts on a timer and writes a snapshot of every kept
 * outcome, metrics are scraped), which refilled the young generation and
 * left buffers for V8 to free at its leisure (RSS 123 → 188 MiB within
 * 10 s of a compaction, BENCHMARKS.md issue 16). A growth that a collection
 * cannot give back (malloc's arenas) repeats nothing: the lowest reading
 * starts afresh after each collection.
 */
export class IdleCollector {
  private lastCount: number;
  private quietSince: number | undefined;
  private workSinceCollect = false;
  private elapsed = 0;
  /** When the last collection of this idle period ran; undefined until one has. */
  private collectedAt: number | undefined;
  /** The lowest footprint read since that collection. */
  private floor: number | undefined;
  /** While `prepare` runs: no other check acts. */
  private preparing = false;
  private stopped = false;
  /** The young generation is held small (from an idle collection until work resumes). */
  private capped = false;
  private readonly timer: { stop(): void };

  constructor(private readonly options: IdleCollectorOptions) {
    this.lastCount = options.started();
    const checkMs = Math.max(100, Math.floor(options.idleMs / 4));
    const every = options.every ?? defaultEvery;
    this.timer = every(() => this.check(checkMs), checkMs);
  }

  stop(): void {
    this.stopped = true;
    this.timer.stop();
    this.uncap();
  }

  /**
   * A request started: lifts the young generation's cap at once rather than
   * at the next check (up to a quarter of `idleMs` later, a burst's whole
   * start with a young generation held at a few MiB). Costs a flag check per
   * request, one V8 flag write per idle-to-busy change.
   */
  working(): void {
    this.uncap();
  }

  private check(stepMs: number): void {
    this.elapsed += stepMs;
    if (this.preparing) return;
    const count = this.options.started();
    if (count !== this.lastCount) {
      this.lastCount = count;
      this.uncap();
      this.workSinceCollect = true;
      this.quietSince = undefined;
      this.collectedAt = undefined;
      return;
    }
    this.quietSince ??= this.elapsed;
    if (this.workSinceCollect && this.elapsed - this.quietSince >= this.options.idleMs) {
      this.workSinceCollect = false;
      const { prepare } = this.options;
      if (!prepare) {
        this.collect();
        return;
      }
      this.preparing = true;
      void prepare()
        .catch(() => undefined)
        .then(() => {
          this.preparing = false;
          // Work that started meanwhile ends this idle period: its own will collect. A stopped
          // collector (the coordinator shutting down) collects nothing.
          if (!this.stopped && this.options.started() === this.lastCount) this.collect();
        });
      return;
    }
    const { footprint } = this.options;
    if (!footprint || this.collectedAt === undefined) return;
    const now = footprint();
    if (this.floor === undefined || now < this.floor) {
      this.floor = now;
      return;
    }
    if (now - this.floor >= (this.options.regrowBytes ?? DEFAULT_REGROW_BYTES) && this.elapsed - this.collectedAt >= this.options.idleMs) this.collect();
  }

  private collect(): void {
    this.options.collect();
    this.collectedAt = this.elapsed;
    this.floor = undefined;
    if (this.options.youngGeneration && !this.capped) {
      this.options.youngGeneration.cap();
      this.capped = true;
    }
  }

  private uncap(): void {
    if (!this.capped) return;
    this.capped = false;
    this.options.youngGeneration?.uncap();
  }
}

function defaultEvery(check: () => void, ms: number): { stop(): void } {
  const t = setInterval(check, ms);
  // It never keeps the process alive.
  t.unref();
  return { stop: () => clearInterval(t) };
}
