/** One queued write: the transaction it belongs to and the lane (kind of batch) it goes in. */
export interface BatchItem {
  readonly txId: string;
}

/** A kind of batch: how big, how many at once, and how to run one. */
export interface BatchLane<T extends BatchItem, R> {
  /** Most items in one batch. 1 turns group commit off: every item is its own round trip. */
  maxBatch: number;
  /** Batches of this lane running at once. */
  maxInFlight: number;
  /** Runs one batch; resolves with one result per item, in order, or rejects for all of them. */
  run(items: T[]): Promise<R[]>;
}

interface Queued<T, R> {
  item: T;
  lane: number;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for the shared stores. Writes queue up; whenever a lane has a
 * free slot, everything queued for it goes out as one batch (one round trip,
 * one commit, one fsync on the server), so N concurrent writers cost about one
 * flush instead of N.
 *
 * Per-transaction order is kept across lanes and batches: an item is taken
 * only once no earlier item of its transaction is queued or in flight in
 * another batch, so a transaction's records reach the store in the order they
 * were submitted even when, say, its begin goes in an append batch and its
 * decision in a decision batch running on another connection. Items of one
 * transaction may share a batch; `run` must apply a batch's items in order.
 *
 * Dispatch waits a microtask after a submit, so writes issued in one
 * synchronous run (a `Promise.all` of decides) start as one batch.
 *
 * @example
 * const batcher = new OrderedBatcher([{ maxBatch: 512, maxInFlight: 2, run: (items) => insertAll(items) }]);
 * const winner = await batcher.submit(0, { txId, record });
 */
export class OrderedBatcher<T extends BatchItem, R> {
  private queue: Array<Queued<T, R>> = [];
  private readonly inFlight: number[];
  /** Items per transaction in running batches. */
  private readonly busy = new Map<string, number>();
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];
  /** Batches started and items they carried, over the batcher's life (for benchmarks and tests). */
  readonly counts = { batches: 0, items: 0 };

  constructor(private readonly lanes: ReadonlyArray<BatchLane<T, R>>) {
    this.inFlight = lanes.map(() => 0);
  }

  /** Items queued or in flight. */
  get pending(): number {
    let n = this.queue.length;
    for (const c of this.busy.values()) n += c;
    return n;
  }

  submit(lane: number, item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, lane, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (let lane = 0; lane < this.lanes.length; lane++) {
      while (this.inFlight[lane] < this.lanes[lane].maxInFlight) {
        const batch = this.take(lane);
        if (batch.length === 0) break;
        this.start(lane, batch);
      }
    }
    if (this.pending === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Takes, in queue order, the items of `lane` that no earlier item of their transaction holds back. */
  private take(lane: number): Array<Queued<T, R>> {
    const max = this.lanes[lane].maxBatch;
    const taken: Array<Queued<T, R>> = [];
    const rest: Array<Queued<T, R>> = [];
    const held = new Set<string>();
    for (const q of this.queue) {
      const tx = q.item.txId;
      if (taken.length < max && q.lane === lane && !held.has(tx) && !this.busy.has(tx)) {
        taken.push(q);
      } else {
        rest.push(q);
        // Everything later of this transaction waits behind it.
        held.add(tx);
      }
    }
    if (taken.length > 0) this.queue = rest;
    return taken;
  }

  private start(lane: number, batch: Array<Queued<T, R>>): void {
    this.inFlight[lane]++;
    this.counts.batches++;
    this.counts.items += batch.length;
    for (const q of batch) this.busy.set(q.item.txId, (this.busy.get(q.item.txId) ?? 0) + 1);
    let run: Promise<R[]>;
    try {
      run = this.lanes[lane].run(batch.map((q) => q.item));
    } catch (e) {
      run = Promise.reject(e);
    }
    run
      .then(
        (results) => batch.forEach((q, i) => q.resolve(results[i])),
        (e: unknown) => batch.forEach((q) => q.reject(e)),
      )
      .finally(() => {
        this.inFlight[lane]--;
        for (const q of batch) {
          const n = this.busy.get(q.item.txId)! - 1;
          if (n === 0) this.busy.delete(q.item.txId);
          else this.busy.set(q.item.txId, n);
        }
        this.dispatch();
      });
  }
}
