import { MAX_TIMER_MS } from './participant-options';

/**
 * Runs a task every `intervalMs`, never two runs at once (the next run is
 * scheduled when one ends), on an unref'd timer so it never keeps the process
 * alive. `intervalMs` 0 disables it. Each run gets a signal that `stop`
 * aborts: a long run (a first marker-pruning pass over a backlog) ends at its
 * next check instead of holding a shutdown for minutes.
 */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private aborter = new AbortController();

  constructor(
    private readonly intervalMs: number,
    private readonly task: (signal: AbortSignal) => Promise<unknown>,
    private readonly onError: (err: unknown) => void,
  ) {}

  start(): void {
    if (this.intervalMs <= 0 || !this.stopped) return;
    this.stopped = false;
    this.aborter = new AbortController();
    this.schedule();
  }

  /** Stops scheduling, tells a run in progress to end, and waits for it. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.aborter.abort();
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.task(this.aborter.signal)
        .then(() => undefined, this.onError)
        .finally(() => {
          this.running = undefined;
          this.schedule();
        });
    }, Math.min(this.intervalMs, MAX_TIMER_MS));
    this.timer.unref();
  }
}
