import { Histogram } from './histogram';
import type { PhaseTick } from './worker-protocol';

interface Bucket {
  latency: Map<string, Histogram>;
  errors: Map<string, number>;
  leaks: number;
  leakSample?: string;
}

/** Collects a worker's results by (completion second, phase) until the next flush. */
export class TickRecorder {
  private buckets = new Map<string, { second: number; phase: string; bucket: Bucket }>();

  private bucket(phase: string): Bucket {
    const second = Math.floor(Date.now() / 1000);
    const key = `${second} ${phase}`;
    let entry = this.buckets.get(key);
    if (!entry) {
      entry = { second, phase, bucket: { latency: new Map(), errors: new Map(), leaks: 0 } };
      this.buckets.set(key, entry);
    }
    return entry.bucket;
  }

  latency(phase: string, key: string, us: number): void {
    const b = this.bucket(phase);
    let h = b.latency.get(key);
    if (!h) b.latency.set(key, (h = new Histogram()));
    h.record(us);
  }

  error(phase: string, kind: string): void {
    const b = this.bucket(phase);
    b.errors.set(kind, (b.errors.get(kind) ?? 0) + 1);
  }

  leak(phase: string, sample: string): void {
    const b = this.bucket(phase);
    b.leaks += 1;
    b.leakSample ??= sample.slice(0, 400);
  }

  /** Everything recorded since the last flush. */
  flush(): PhaseTick[] {
    const out: PhaseTick[] = [];
    for (const { second, phase, bucket } of this.buckets.values()) {
      out.push({
        second,
        phase,
        latency: Object.fromEntries([...bucket.latency].map(([k, h]) => [k, h.toData()])),
        errors: Object.fromEntries(bucket.errors),
        leaks: bucket.leaks,
        ...(bucket.leakSample === undefined ? {} : { leakSample: bucket.leakSample }),
      });
    }
    this.buckets = new Map();
    return out;
  }
}
