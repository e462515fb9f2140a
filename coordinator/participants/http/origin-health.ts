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
 * makes it responsive again; only calls started after the last answer count
 * towards the next `failuresToOpen`.
 *
 * Failing a call unsent is always safe: the caller gets `outcome-unknown`, as
 * for a lost call, and the engine treats it as such (a "no" before the
 * decision, a retry with capped backoff after it).
 */
export class OriginHealth {
  private failures = 0;
  private inFlight = 0;
  /** Answers so far: a call's failure counts only if no answer came since it started. */
  private answers = 0;

  constructor(
    private readonly failuresToOpen: number,
    private readonly probes: number,
  ) {}

  /** Takes a slot for a call, or throws OriginUnresponsiveError. Pair with `done`, passing what this returns. */
  begin(): number {
    if (this.failures >= this.failuresToOpen && this.inFlight >= this.probes) throw new OriginUnresponsiveError(this.failures);
    this.inFlight += 1;
    return this.answers;
  }

  /**
   * `started`: what `begin` returned. A call that hung from before the last
   * answer and fails after it says nothing new: the origin answered since.
   */
  done(answered: boolean, started: number): void {
    this.inFlight -= 1;
    if (answered) {
      this.answers += 1;
      this.failures = 0;
    } else if (started === this.answers) this.failures += 1;
  }

  get unresponsive(): boolean {
    return this.failures >= this.failuresToOpen;
  }
}
