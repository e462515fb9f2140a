/** Where progress goes (process.stderr, or a test's stream). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

/**
 * Progress on a terminal is one line redrawn in place (at most every
 * 100 ms); anywhere else (a pipe, CI) a line at most every `everyMs`, so a
 * log stays readable. Steps (`note`) always get their own line.
 *
 * @example
 * const progress = new LiveLine(process.stderr);
 * progress.update(`12/200 transfers`);
 * progress.done('200/200 transfers');
 */
export class LiveLine {
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly everyMs = stream.isTTY ? 100 : 2_000,
  ) {}

  /** The current state; drawn if the last drawing is old enough. */
  update(text: string): void {
    const now = Date.now();
    if (now - this.lastDraw < this.everyMs) return;
    this.lastDraw = now;
    this.draw(text);
  }

  /** A line of its own (a step started), after clearing the live line. */
  note(text: string): void {
    this.clear();
    this.stream.write(`${text}\n`);
  }

  /** The final state, always drawn, ending the live line. */
  done(text: string): void {
    this.draw(text);
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  private draw(text: string): void {
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${text}`);
      this.drawn = true;
    } else {
      this.stream.write(`${text}\n`);
    }
  }

  private clear(): void {
    if (!this.drawn) return;
    this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }
}
