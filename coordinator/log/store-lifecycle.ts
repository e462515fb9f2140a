import type { TwopcError } from '../engine/ports/protocol';
import { logNotOpen, logOpenedTwice } from './log-errors';

type State = 'new' | 'opening' | 'open' | 'closing' | 'closed';

/**
 * The life of a store instance: opened once, used, closed once (a close
 * racing open waits for it, then undoes it). Every refusal is one of the
 * shared log errors, so the file, PostgreSQL and Redis stores refuse alike.
 */
export class StoreLifecycle {
  private state: State = 'new';
  private opening?: Promise<unknown>;
  private closing?: Promise<void>;

  /** `details` go on every refusal (default `{ where }`; the file log names its `dir`). */
  constructor(
    private readonly where: string,
    private readonly className: string,
    private readonly details: Record<string, unknown> = { where },
  ) {}

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Runs `load` as the one open(); on failure `undo` releases what it took and the instance is closed. */
  open<T>(load: () => Promise<T>, undo: () => Promise<void>): Promise<T> {
    if (this.state !== 'new') return Promise.reject(logOpenedTwice(this.where, this.className, this.details));
    this.state = 'opening';
    const run = load().then(
      (v) => {
        this.state = 'open';
        return v;
      },
      async (e: unknown) => {
        await undo().catch(() => undefined);
        this.state = 'closed';
        throw e;
      },
    );
    this.opening = run;
    return run;
  }

  /** The error for a call made now, or undefined when the store is open. */
  refusal(): TwopcError | undefined {
    if (this.state === 'open') return undefined;
    return logNotOpen(this.where, this.state === 'new' || this.state === 'opening' ? 'not open' : 'closed', this.details);
  }

  /** Runs `shutDown` once; later calls share it. */
  close(shutDown: () => Promise<void>): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    if (this.state === 'new') {
      this.state = 'closed';
      return Promise.resolve();
    }
    // A close() racing open() waits for it, then undoes it.
    this.closing ??= (this.opening ?? Promise.resolve()).then(
      async () => {
        this.state = 'closing';
        try {
          await shutDown();
        } finally {
          this.state = 'closed';
        }
      },
      () => undefined,
    );
    return this.closing;
  }
}
