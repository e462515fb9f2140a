/** Per-transfer latencies of one mode, over every measured run. */
export class LatencyRecorder {
  private samples: number[] = [];
  private sorted = true;

  add(ms: number): void {
    this.samples.push(ms);
    this.sorted = false;
  }

  addAll(other: LatencyRecorder): void {
    for (const s of other.samples) this.add(s);
  }

  get count(): number {
    return this.samples.length;
  }

  /** Nearest-rank percentile in ms (NaN when empty). */
  percentile(p: number): number {
    if (this.samples.length === 0) return Number.NaN;
    if (!this.sorted) {
      this.samples.sort((a, b) => a - b);
      this.sorted = true;
    }
    const rank = Math.ceil((p / 100) * this.samples.length);
    return this.samples[Math.min(Math.max(rank, 1), this.samples.length) - 1];
  }
}
