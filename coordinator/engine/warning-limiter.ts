/**
 * At most one warning per key (a participant) per interval: a participant
 * that is down makes every transaction's phase 2 retry against it, and one
 * line per retry would bury everything else in the log. The first warning of
 * a key is written at once; the next one written says how many were held back.
 */
export class WarningLimiter {
  private readonly keys = new Map<string, { at: number; held: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Calls `write(heldBack)` when a warning for `key` is due now (heldBack: how many were not written since the last). */
  warn(key: string, write: (heldBack: number) => void): void {
    const t = this.now();
    const last = this.keys.get(key);
    if (last && t - last.at < this.intervalMs) {
      last.held += 1;
      return;
    }
    // Bounded: keys of participants not heard of for an interval are dropped.
    if (this.keys.size > 10_000) for (const [k, v] of this.keys) if (t - v.at >= this.intervalMs) this.keys.delete(k);
    this.keys.set(key, { at: t, held: 0 });
    write(last?.held ?? 0);
  }
}
