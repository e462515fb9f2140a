/**
 * One coordinator process's lease on a shared decision log (PostgreSQL or
 * Redis). Its `token` is the fencing token: issued by the store, strictly
 * increasing, one per process start. The transactions a process begins carry
 * its token as their owner (BeginRecord.owner).
 */
export interface InstanceLease {
  token: number;
  /** The instance's configured name (several processes in turn may carry one name: restarts). */
  name: string;
  /** Base URL other instances relay requests to (`http://10.0.0.5:7070`). */
  url: string;
  /** By the store's clock, in ms since the epoch. */
  expiresAt: number;
  /** Set once another lease took this one over: its transactions are that lease's now. */
  takenOverBy?: number;
}

/** Every lease and the store's clock when they were read (lease expiry is judged by that one clock, never by each machine's own). */
export interface LeaseView {
  now: number;
  leases: InstanceLease[];
}

/**
 * The seam between coordinator instances and the store they share. Every
 * operation is atomic in the store and judged by the store's clock.
 *
 * Fencing: once a lease is taken over, the store refuses every log write made
 * under its token (`fenced`), atomically with the takeover: a process that
 * was paused past its lease cannot write after the instance that took over
 * has read the log.
 */
export interface LeaseStore {
  /** A new lease (a new fencing token) for this process; the log's writes carry its token from now on. */
  register(name: string, url: string, leaseMs: number): Promise<InstanceLease>;
  /** Extends the lease by `leaseMs` from now. False: it was taken over (this process is fenced). */
  renew(token: number, leaseMs: number): Promise<boolean>;
  /**
   * Takes lease `token` over for lease `by`: only if it is not taken over yet,
   * and it expired, or `evenIfLive` (a restart of the same instance name takes
   * over its previous process at once). True if this call took it.
   */
  takeOver(token: number, by: number, options?: { evenIfLive?: boolean }): Promise<boolean>;
  /** Every lease, with the store's clock. */
  view(): Promise<LeaseView>;
  /** Graceful stop: the lease expires now, so another instance takes its transactions over at once. */
  release(token: number): Promise<void>;
  /** Forgets leases taken over longer than `olderThanMs` ago whose transactions are all finished. */
  prune(olderThanMs: number): Promise<number>;
}
