/** Count and total time of one kind of step (a statement kind, a phase, a log call). */
interface Entry {
  count: number;
  totalMs: number;
}

/**
 * Where --profile accumulates, per mode: how many times each step ran and how
 * long it took. Divided by the transfers made, it reads as "round trips per
 * transfer" and "ms per transfer" for each step.
 */
export class Tally {
  private readonly entries = new Map<string, Entry>();
  /** Off during warm-ups: only measured transfers are profiled. */
  recording = false;

  add(kind: string, ms: number): void {
    if (!this.recording) return;
    const entry = this.entries.get(kind);
    if (entry) {
      entry.count += 1;
      entry.totalMs += ms;
    } else this.entries.set(kind, { count: 1, totalMs: ms });
  }

  /** Times a promise-returning step. */
  async time<T>(kind: string, step: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await step();
    } finally {
      this.add(kind, performance.now() - started);
    }
  }

  rows(): Array<{ kind: string } & Entry> {
    return [...this.entries.entries()].map(([kind, e]) => ({ kind, ...e })).sort((a, b) => a.kind.localeCompare(b.kind));
  }
}
