import { createHook } from 'node:async_hooks';
import { PerformanceObserver } from 'node:perf_hooks';

/**
 * Counts, while switched on, the async resources created (promises, timers,
 * immediates, thread-pool requests, microtasks: async_hooks' `init` by type)
 * and the garbage collections that ran (count and pause), for the bench's
 * per-transfer "what does one transaction set in motion" tables. The hook
 * itself slows everything down: read the counts, not the CPU, of a run that
 * counts.
 */
export class AsyncCounts {
  private current?: Map<string, number>;
  private readonly hook = createHook({
    init: (_id, type) => {
      const c = this.current;
      if (c) c.set(type, (c.get(type) ?? 0) + 1);
    },
  });
  private readonly gc = new PerformanceObserver((list) => {
    const c = this.current;
    if (!c) return;
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      // 1 scavenge (young generation), 2 minor mark-compact, 4 mark-sweep-compact, 8 incremental, 16 weak callbacks.
      const name = kind === 1 ? 'gc scavenge' : `gc kind ${kind}`;
      c.set(name, (c.get(name) ?? 0) + 1);
      c.set('gc pause us', (c.get('gc pause us') ?? 0) + Math.round(e.duration * 1000));
    }
  });

  constructor() {
    this.hook.enable();
    this.gc.observe({ entryTypes: ['gc'] });
  }

  /** Counts into `into` until the next `count` (or `stop`). */
  count(into: Map<string, number>): void {
    this.current = into;
  }

  stop(): void {
    this.current = undefined;
  }

  close(): void {
    this.hook.disable();
    this.gc.disconnect();
  }

  /** One line per type: per transfer, sorted by name. */
  static format(counts: Map<string, number>, transfers: number): string {
    return [...counts.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([type, n]) => `  ${type.padEnd(24)} ${(n / transfers).toFixed(2).padStart(9)}`)
      .join('\n');
  }
}
