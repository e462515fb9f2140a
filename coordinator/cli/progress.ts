/** Where progress goes: stderr, or a test's stream. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

/**
 * Progress of long work on stderr (stdout stays for the result, so `--json`
 * output is never mixed with it). On a terminal one line is redrawn in
 * place; elsewhere (a log file, CI) a line is written at most every
 * `everyMs`, plus the last one. `quiet` writes nothing.
 *
 * @example
 * const progress = new Progress(process.stderr, { quiet: opts.quiet });
 * progress.update(`recovery: ${done}/${total} finished`);
 * progress.done('recovery: done');
 */
export class Progress {
  private lastWrite?: number;
  private pending?: string;
  private drawn = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly options: { quiet?: boolean; everyMs?: number; now?: () => number } = {},
  ) {}

  /** Shows the current state of the work (throttled). */
  update(text: string): void {
    if (this.options.quiet) return;
    const now = (this.options.now ?? Date.now)();
    this.pending = text;
    const every = this.options.everyMs ?? (this.stream.isTTY ? 100 : 1000);
    if (this.lastWrite !== undefined && now - this.lastWrite < every) return;
    this.lastWrite = now;
    this.flush();
  }

  /** Ends the progress display with a final line. */
  done(text: string): void {
    if (this.options.quiet) return;
    this.pending = text;
    this.flush();
    if (this.stream.isTTY && this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  private flush(): void {
    if (this.pending === undefined) return;
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${this.pending}`);
      this.drawn = true;
    } else {
      this.stream.write(`${this.pending}\n`);
    }
    this.pending = undefined;
  }
}

/**
 * Ticks `render(elapsed seconds)` into `progress` every second until `work`
 * settles: for work whose own progress cannot be seen (an online call).
 * Work done within the first second shows nothing.
 */
export async function withTicker<T>(progress: Progress, render: (seconds: number) => string, work: Promise<T>): Promise<T> {
  const started = Date.now();
  const timer = setInterval(() => progress.update(render(Math.round((Date.now() - started) / 1000))), 1000);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
