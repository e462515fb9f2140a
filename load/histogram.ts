/** Sub-buckets per power of two: each bucket spans 2^(1/16) ≈ 4.4%, so a percentile is within ±2.2%. */
const SUB_BUCKETS = 16;

/** A histogram as it travels between processes (sparse). */
export interface HistogramData {
  count: number;
  sumUs: number;
  maxUs: number;
  buckets: Array<[number, number]>;
}

function bucketOf(us: number): number {
  return us < 1 ? 0 : Math.floor(Math.log2(us) * SUB_BUCKETS) + 1;
}

/** The middle of a bucket, in µs (geometric mean of its bounds). */
function bucketValue(bucket: number): number {
  return bucket === 0 ? 0 : 2 ** ((bucket - 0.5) / SUB_BUCKETS);
}

/**
 * A log-bucketed latency histogram (HDR-style, fixed relative precision):
 * cheap to record into, small to send over IPC, and exactly mergeable across
 * the load workers, which sorted samples are not at 10⁶ requests.
 *
 * @example
 * const h = new Histogram();
 * h.record(1234); // µs
 * h.percentileMs(99);
 */
export class Histogram {
  private readonly buckets = new Map<number, number>();
  count = 0;
  sumUs = 0;
  maxUs = 0;

  record(us: number): void {
    const b = bucketOf(us);
    this.buckets.set(b, (this.buckets.get(b) ?? 0) + 1);
    this.count += 1;
    this.sumUs += us;
    if (us > this.maxUs) this.maxUs = us;
  }

  merge(other: HistogramData | Histogram): void {
    const buckets = other instanceof Histogram ? other.buckets.entries() : other.buckets;
    for (const [b, n] of buckets) this.buckets.set(b, (this.buckets.get(b) ?? 0) + n);
    this.count += other.count;
    this.sumUs += other.sumUs;
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs;
  }

  /** Nearest-rank percentile in ms (NaN when empty); the top rank is the exact maximum. */
  percentileMs(p: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    if (rank >= this.count) return this.maxUs / 1000;
    let seen = 0;
    for (const b of [...this.buckets.keys()].sort((x, y) => x - y)) {
      seen += this.buckets.get(b)!;
      if (seen >= rank) return Math.min(bucketValue(b), this.maxUs) / 1000;
    }
    return this.maxUs / 1000;
  }

  meanMs(): number {
    return this.count === 0 ? Number.NaN : this.sumUs / this.count / 1000;
  }

  toData(): HistogramData {
    return { count: this.count, sumUs: this.sumUs, maxUs: this.maxUs, buckets: [...this.buckets.entries()] };
  }

  static from(data: HistogramData): Histogram {
    const h = new Histogram();
    h.merge(data);
    return h;
  }
}
