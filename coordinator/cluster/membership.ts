import { performance } from 'node:perf_hooks';
import type { EngineLogger } from '../engine/ports/logger';
import { errorMessage, uuidV7Time } from '../engine/ports/protocol';
import type { TxSnapshot } from '../engine/ports/decision-log';
import type { InstanceLease, LeaseStore, LeaseView } from '../engine/ports/lease-store';
import { ownerOf, type TransactionOwnership } from '../engine/ports/ownership';

export interface MembershipOptions {
  leases: LeaseStore;
  /**
   * This instance's name (a process starting under the name of a previous one
   * takes that one's lease over at once) and the base URL other instances relay
   * requests to; read when the lease is registered (the port may be known late).
   */
  identity(): { name: string; url: string };
  /** How long a lease lasts without renewal: an instance that dies is taken over this long after its last renewal (plus one check). */
  leaseMs: number;
  logger: EngineLogger;
  /**
   * Whose leases this instance may take over (expired ones, and its own
   * name's previous process): only those whose transactions it can finish,
   * i.e. whose participants it reaches (see lease-kind.ts). Default: any.
   * Transactions of a lease it may not take over are left alone here.
   */
  mayTakeOver?(lease: InstanceLease): boolean;
  /** Leases this instance just took over: their transactions are its own now (run recovery). */
  onTakeover?(tokens: number[]): void;
  /** This process lost its lease (taken over, or not renewed in time): its live transactions are no longer its own. A new lease follows. */
  onFenced?(lost: number): void;
  /**
   * A logged transaction with no known owner (its begin record was lost in a
   * store crash — it was stored, not forced — and its id was made before ids
   * carried their owner, or no lease names its owner any more) may still run
   * at some instance; it is left alone until this long after its id was made
   * (the longest transaction timeout plus the sweep grace), unless it is
   * decided. Default 0.
   */
  unownedAfterMs?: number;
  /** Monotonic clock in ms (tests). */
  clock?: () => number;
}

/** Where a transaction's owner stands, by the last view of the leases. */
export type OwnerState =
  | { kind: 'me' }
  | { kind: 'live'; lease: InstanceLease }
  | { kind: 'expired'; lease: InstanceLease }
  | { kind: 'unknown' };

// Leases taken over this long ago, owning nothing unfinished, are forgotten.
const PRUNE_AFTER_MS = 7 * 24 * 60 * 60 * 1000;
const PRUNE_EVERY_TICKS = 500;

/**
 * One coordinator instance among several on a shared store (SPEC §7).
 *
 * - It holds a lease with a fencing token (a new one per process start),
 *   renewed every quarter of `leaseMs`. The transactions it begins carry the
 *   token as their owner.
 * - Every check it looks at all leases: one that expired by the store's clock
 *   and was not taken over is taken over (atomically: one taker wins), and the
 *   taker recovers its transactions.
 * - If renewal answers "taken over", or has not succeeded for `leaseMs` minus
 *   a margin (it must then assume another instance took over), the process is
 *   fenced: the store refuses its writes under the old token, its live
 *   transactions are no longer its own, and it registers a new lease.
 * - Renewal and the look at other leases run on their own, and the lease's
 *   end has a timer of its own: a renewal call that hangs (a store cut off
 *   without a reset, before the store's own deadline gives up on it) cannot
 *   hold back fencing, which happens when the lease may have run out, not when
 *   the call returns; nor can a slow scan hold back renewal.
 */
export class Membership implements TransactionOwnership {
  private current?: InstanceLease;
  private view: LeaseView = { now: 0, leases: [] };
  private viewReadAt = 0;
  private byToken = new Map<number, InstanceLease>();
  /** Local monotonic time until which the lease is surely ours. */
  private validUntil = 0;
  private timer?: NodeJS.Timeout;
  /** Fires when the lease may have run out: fences this process whatever a renewal call in flight is doing. */
  private expiryTimer?: NodeJS.Timeout;
  private renewing?: Promise<void>;
  private scanning?: Promise<void>;
  private ticks = 0;
  private stopped = false;
  private readonly clock: () => number;
  private readonly margin: number;

  constructor(private readonly o: MembershipOptions) {
    this.clock = o.clock ?? (() => performance.now());
    // Renewal must land well before expiry; a clock-rate difference between machines is tiny next to this.
    this.margin = Math.max(Math.floor(o.leaseMs / 5), 20);
  }

  get token(): number | undefined {
    return this.current?.token;
  }

  /** True while this process holds a lease it renewed in time. */
  get holdsLease(): boolean {
    return this.current !== undefined && this.clock() < this.validUntil;
  }

  /** Every lease as last read. */
  get leases(): readonly InstanceLease[] {
    return this.view.leases;
  }

  /**
   * Registers this process's lease, takes over the previous process of the
   * same name (a restart) and every expired lease, then checks on a timer.
   * @returns the leases taken over (recover their transactions before serving).
   */
  async start(): Promise<number[]> {
    await this.register();
    const taken = await this.scan(true);
    this.timer = setInterval(() => this.tick(), Math.max(Math.floor(this.o.leaseMs / 4), 10));
    this.timer.unref();
    return taken;
  }

  /** Stops checking and gives the lease up, so another instance takes over what is left at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.expiryTimer);
    await Promise.all([this.renewing, this.scanning]);
    const token = this.current?.token;
    if (token !== undefined) await this.o.leases.release(token).catch((e) => this.o.logger.warn({ err: errorMessage(e) }, 'could not release the lease; it expires on its own'));
  }

  mayRecover(snapshot: TxSnapshot): boolean {
    const owner = ownerOf(snapshot);
    const where = owner === undefined ? undefined : this.locate(owner);
    if (where === undefined || where.kind === 'unknown') return snapshot.decision !== undefined || Date.now() > uuidV7Time(snapshot.txId) + (this.o.unownedAfterMs ?? 0);
    return where.kind === 'me';
  }

  /** Where the owner of lease `token` stands: follows takeovers to the lease that holds its transactions now. */
  locate(token: number): OwnerState {
    const seen = new Set<number>();
    let lease = this.byToken.get(token);
    while (lease?.takenOverBy !== undefined && !seen.has(lease.token)) {
      seen.add(lease.token);
      lease = this.byToken.get(lease.takenOverBy);
    }
    if (!lease) return { kind: 'unknown' };
    if (lease.token === this.current?.token) return { kind: 'me' };
    const storeNow = this.view.now + (this.clock() - this.viewReadAt);
    return lease.expiresAt < storeNow ? { kind: 'expired', lease } : { kind: 'live', lease };
  }

  /** Reads the leases again (an owner registered since the last check is unknown until then). */
  async refresh(): Promise<LeaseView> {
    const readAt = this.clock();
    const view = await this.o.leases.view();
    this.setView(view, readAt);
    return view;
  }

  /** Takes an expired lease over now (a request for one of its transactions came in). True if it is this instance's now. */
  async takeOverNow(token: number): Promise<boolean> {
    const me = this.current?.token;
    if (me === undefined || !this.holdsLease) return false;
    const lease = this.byToken.get(token);
    if (lease && !this.mayTakeOver(lease)) return false;
    const won = await this.o.leases.takeOver(token, me);
    await this.refresh();
    if (won) {
      this.o.logger.warn({ token, name: lease?.name, url: lease?.url, restart: false, onRequest: true }, 'took over the transactions of an instance whose lease expired');
      this.tookOver([token]);
    }
    return this.locate(token).kind === 'me';
  }

  private async register(): Promise<void> {
    const startedAt = this.clock();
    const { name, url } = this.o.identity();
    const lease = await this.o.leases.register(name, url, this.o.leaseMs);
    // Kept even when stopping meanwhile: stop() waits for this, then gives the lease up.
    this.current = lease;
    this.extendUntil(startedAt + this.o.leaseMs - this.margin);
    this.o.logger.info({ token: lease.token, name, url, leaseMs: this.o.leaseMs }, 'coordinator lease registered');
  }

  /** Renewal and the scan each start when the previous one of their kind is done; neither waits for the other. */
  private tick(): void {
    this.renewing ??= this.renew()
      .catch((e: unknown) => this.o.logger.warn({ err: errorMessage(e) }, 'lease renewal failed; trying again'))
      .finally(() => {
        this.renewing = undefined;
      });
    this.scanning ??= (async () => {
      if (this.stopped || !this.holdsLease) return;
      await this.scan(false);
      if (++this.ticks % PRUNE_EVERY_TICKS === 0) await this.o.leases.prune(PRUNE_AFTER_MS);
    })()
      .catch((e: unknown) => this.o.logger.warn({ err: errorMessage(e) }, 'lease check failed; trying again'))
      .finally(() => {
        this.scanning = undefined;
      });
  }

  /** The lease is surely ours until `until` (local monotonic time); past it, the expiry timer fences. */
  private extendUntil(until: number): void {
    this.validUntil = until;
    clearTimeout(this.expiryTimer);
    const token = this.current?.token;
    if (token === undefined || this.stopped) return;
    this.expiryTimer = setTimeout(() => this.expire(token), Math.max(until - this.clock(), 0));
    this.expiryTimer.unref();
  }

  private expire(token: number): void {
    if (this.stopped || this.current?.token !== token) return;
    // A timer may fire a little early by the monotonic clock: look again then.
    if (this.clock() < this.validUntil) return this.extendUntil(this.validUntil);
    this.o.logger.error({ token, renewalInFlight: this.renewing !== undefined }, 'lease not renewed in time: assuming another instance took it over (fenced)');
    this.fence(token);
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    const token = this.current?.token;
    // Fenced (by the expiry timer, or a registration that failed): a new lease.
    if (token === undefined) return this.register();
    const startedAt = this.clock();
    // A failure is thrown to the next check, which tries again; the expiry timer fences once the lease may have run out.
    const renewed = await this.o.leases.renew(token, this.o.leaseMs);
    // Fenced while the call was out: its answer comes too late to count (a lease renewed this late expires on its own).
    if (this.stopped || this.current?.token !== token) return;
    if (renewed) return this.extendUntil(startedAt + this.o.leaseMs - this.margin);
    this.o.logger.error({ token }, 'lease taken over by another instance (this process was paused or cut off past its lease, or another process started under the same name): fenced');
    this.fence(token);
    await this.register();
  }

  /** Drops a lost lease: its transactions are no longer this process's. A new lease is registered by the next renewal. */
  private fence(lost: number): void {
    this.current = undefined;
    clearTimeout(this.expiryTimer);
    try {
      this.o.onFenced?.(lost);
    } catch (e) {
      this.o.logger.error({ err: errorMessage(e) }, 'fencing handler failed');
    }
  }

  /** Reads the leases, takes over the expired ones (and, at start, this name's previous process). */
  private async scan(starting: boolean): Promise<number[]> {
    await this.refresh();
    const current = this.current;
    if (!current) return [];
    const me = current.token;
    const taken: number[] = [];
    // A restart takes over the newest earlier process of its name at once; any other lease only once expired.
    const sameName = this.view.leases.filter((l) => l.name === current.name && l.token < me && l.takenOverBy === undefined);
    const previous = sameName.length === 0 ? undefined : Math.max(...sameName.map((l) => l.token));
    if (starting && sameName.filter((l) => l.expiresAt >= this.view.now).length > 1) {
      this.o.logger.warn({ name: current.name, leases: sameName.map((l) => l.token) }, 'several live leases carry this instance name: give every instance its own TWOPC_INSTANCE_NAME');
    }
    for (const lease of this.view.leases) {
      if (lease.token === me || lease.takenOverBy !== undefined || !this.mayTakeOver(lease)) continue;
      const restart = starting && lease.token === previous;
      if (!restart && lease.expiresAt >= this.view.now) continue;
      if (await this.o.leases.takeOver(lease.token, me, { evenIfLive: restart })) {
        this.o.logger.warn({ token: lease.token, name: lease.name, url: lease.url, restart }, restart ? 'took over the previous process of this instance' : 'took over the transactions of an instance whose lease expired');
        taken.push(lease.token);
      }
    }
    if (taken.length > 0) {
      await this.refresh();
      if (!starting) this.tookOver(taken);
    }
    return taken;
  }

  private mayTakeOver(lease: InstanceLease): boolean {
    return this.o.mayTakeOver?.(lease) ?? true;
  }

  private tookOver(tokens: number[]): void {
    try {
      this.o.onTakeover?.(tokens);
    } catch (e) {
      this.o.logger.error({ err: errorMessage(e) }, 'takeover handler failed');
    }
  }

  private setView(view: LeaseView, readAt: number): void {
    this.view = view;
    this.viewReadAt = readAt;
    this.byToken = new Map(view.leases.map((l) => [l.token, l]));
  }
}
