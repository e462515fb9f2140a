import { MAX_TIMER_MS } from './ports/backoff';
/** An item the queue can hold: the queue keeps the item's place in `deadlineSlot` (-1: not queued), so removing it is O(log n). */
export interface Deadlined {
  deadlineSlot: number;
}

// Due items handed out per turn of the event loop: tens of thousands expiring at once must not hold requests up.
const DUE_PER_TURN = 500;

/**
 * Every running transaction's deadline in one binary heap, under one timer.
 * A `setTimeout` per transaction cost about 300 bytes each (its Timeout, the
 * closure and its context, two boxed numbers): at 50,000 running transactions,
 * 15 MiB of heap for what this holds in two arrays (8 bytes per slot each).
 *
 * Deadlines are on the monotonic clock, as a `setTimeout` is: a wall-clock
 * step neither fires them early nor holds them back. An item is never handed
 * out before its deadline: a timer that fires early (Node's timers count from
 * the start of the loop's turn) is armed again for the rest.
 */
export class DeadlineQueue<T extends Deadlined> {
  private readonly items: T[] = [];
  // Parallel to `items`: monotonic ms. Only doubles, so V8 keeps them unboxed.
  private readonly due: number[] = [];
  private timer?: NodeJS.Timeout;
  private armedFor = Infinity;
  private draining = false;

  constructor(
    private readonly onDue: (item: T) => void,
    // Read at each call, not captured: fake timers (jest, sinon) replace globalThis.performance.
    private readonly clock: () => number = () => globalThis.performance.now(),
  ) {}

  get size(): number {
    return this.items.length;
  }

  /** Queues `item` to be handed to `onDue` once `inMs` have passed (not before). */
  add(item: T, inMs: number): void {
    if (item.deadlineSlot >= 0) this.remove(item);
    const at = this.clock() + inMs;
    const slot = this.items.length;
    this.items.push(item);
    this.due.push(at);
    item.deadlineSlot = slot;
    this.up(slot);
    this.arm();
  }

  /** Takes `item` out; nothing happens if it is not queued. */
  remove(item: T): void {
    const slot = item.deadlineSlot;
    if (slot < 0 || this.items[slot] !== item) return;
    item.deadlineSlot = -1;
    const last = this.items.length - 1;
    const moved = this.items.pop()!;
    const movedDue = this.due.pop()!;
    if (slot === last) return;
    this.items[slot] = moved;
    this.due[slot] = movedDue;
    moved.deadlineSlot = slot;
    this.down(slot);
    this.up(moved.deadlineSlot);
    // The timer stays armed for the earlier deadline: firing finds nothing due and arms for the next.
  }

  /** Takes everything out and stops the timer. */
  clear(): void {
    for (const item of this.items) item.deadlineSlot = -1;
    this.items.length = 0;
    this.due.length = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private arm(): void {
    if (this.draining || this.items.length === 0) return;
    const next = this.due[0];
    if (this.timer !== undefined && next >= this.armedFor) return;
    clearTimeout(this.timer);
    this.armedFor = next;
    // A longer delay would fire after 1 ms; firing early only re-arms for the rest.
    this.timer = setTimeout(() => this.fire(), Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(next - this.clock()))));
    // Like the per-transaction timers it replaces: running transactions do not keep a process alive.
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    this.draining = true;
    let handed = 0;
    try {
      const now = this.clock();
      while (this.items.length > 0 && this.due[0] <= now && handed < DUE_PER_TURN) {
        const item = this.items[0];
        this.remove(item);
        handed += 1;
        this.onDue(item);
      }
    } finally {
      this.draining = false;
      if (handed === DUE_PER_TURN && this.items.length > 0) {
        // More may be due: the rest on the next turn, after the I/O waiting meanwhile.
        this.armedFor = -Infinity;
        this.timer = setTimeout(() => this.fire(), 0);
        this.timer.unref();
      } else {
        this.arm();
      }
    }
  }

  private up(slot: number): void {
    const { items, due } = this;
    const item = items[slot];
    const at = due[slot];
    while (slot > 0) {
      const parent = (slot - 1) >> 1;
      if (due[parent] <= at) break;
      items[slot] = items[parent];
      due[slot] = due[parent];
      items[slot].deadlineSlot = slot;
      slot = parent;
    }
    items[slot] = item;
    due[slot] = at;
    item.deadlineSlot = slot;
  }

  private down(slot: number): void {
    const { items, due } = this;
    const n = items.length;
    const item = items[slot];
    const at = due[slot];
    for (;;) {
      const left = 2 * slot + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && due[right] < due[left] ? right : left;
      if (due[child] >= at) break;
      items[slot] = items[child];
      due[slot] = due[child];
      items[slot].deadlineSlot = slot;
      slot = child;
    }
    items[slot] = item;
    due[slot] = at;
    item.deadlineSlot = slot;
  }
}
