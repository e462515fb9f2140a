/** Thrown, without sending, for a call to an origin that is not answering while its probes are out. */
export class OriginUnresponsiveError extends Error {
  readonly code = 'TWOPC_ORIGIN_UNRESPONSIVE';

  constructor(failures: number) {
    super(`not called: its last ${failures} calls got no answer, and ${failures === 1 ? 'a probe is' : 'probes are'} still out`);
    this.name = 'OriginUnresponsiveError';
  }
}

/**
 * Whether one participant origin answers. After `failuresToOpen` calls in a
 * row got no answer (a timeout, a reset, a refused connection), the origin
 * counts as unresponsive: at most `probes` calls are sent to it at once, and
 * the others fail at once, unsent, instead of each holding a connection (and
 * a transaction) for its whole deadline. Any answer, whatever its status,
 * makes it responsive again.
 *
 * Failing a call unsent is always safe: the caller gets `outcome-unknown`, as
 * for a lost call, and the engine treats it as such (a "no" before the
 * decision, a retry with capped backoff after it).
 */
export class OriginHealth {
  private failures = 0;
  private inFlight = 0;

  constructor(
    private readonly failuresToOpen: number,
    private readonly probes: number,
  ) {}

  /** Takes a slot for a call, or throws OriginUnresponsiveError. Pair with `done`. */
  begin(): void {
    if (this.failures >= this.failuresToOpen && this.inFlight >= this.probes) throw new OriginUnresponsiveError(this.failures);
    this.inFlight += 1;
  }

  done(answered: boolean): void {
    this.inFlight -= 1;
    this.failures = answered ? 0 : this.failures + 1;
  }

  get unresponsive(): boolean {
    return this.failures >= this.failuresToOpen;
  }
}
