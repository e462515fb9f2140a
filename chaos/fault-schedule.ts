import { CARRIED_CRASH_POINTS, CRASH_POINTS, type CrashPoint } from '../coordinator/engine/crash-points';
import type { LinkMode } from './chaos-proxy';
import type { Rng } from './random';

/** The kinds of fault of a run on the file log (one coordinator process): the default of such a run. */
export const FAULT_KINDS = [
  'coordinator-kill', // SIGKILL at a random moment, restart on the same data directory
  'coordinator-crash-point', // restart armed with TWOPC_CRASH_AT=<point>:<n>: it SIGKILLs itself there
  'coordinator-pause', // SIGSTOP, then SIGCONT
  'service-kill', // SIGKILL a participant service, restart it
  'service-pause',
  'db-crash', // immediate stop of a PostgreSQL cluster, then start it again
  'link-delay', // a proxied link delays every chunk
  'link-refuse', // a link resets new connections
  'link-blackhole', // a link swallows new connections: callers time out
  'link-reset', // a link resets every established connection
  'link-cut', // a link cuts connections after a few bytes, mid-message
  'disk-full', // restart with the log's writes failing ENOSPC from the n-th on
  'disk-io-error', // restart with the log's n-th fdatasync failing EIO (unsynced data lost)
] as const;

/** Kinds only a shared decision log (PostgreSQL or Redis) has. */
export const SHARED_LOG_FAULT_KINDS = [
  'store-crash', // SIGKILL the redis-server (restart on its AOF) or immediate stop of the log's PostgreSQL cluster
] as const;

/** Kinds only the file log has: the disk under it fails. */
export const FILE_LOG_FAULT_KINDS = ['disk-full', 'disk-io-error'] as const;

/** Every kind of fault the runner injects, whatever the log. */
export const ALL_FAULT_KINDS = [...FAULT_KINDS, ...SHARED_LOG_FAULT_KINDS] as const;
export type FaultKind = (typeof ALL_FAULT_KINDS)[number];

/** The kinds that apply to a run on this log (the default of `--faults`). */
export function faultKindsFor(log: 'file' | 'postgres' | 'redis'): FaultKind[] {
  if (log === 'file') return [...FAULT_KINDS];
  return ALL_FAULT_KINDS.filter((k) => !(FILE_LOG_FAULT_KINDS as readonly string[]).includes(k));
}

/** Every crash point a chaos run may arm. */
export const ALL_CRASH_POINTS: readonly CrashPoint[] = [...CRASH_POINTS, ...CARRIED_CRASH_POINTS];

/**
 * The crash points the run's transactions reach (the default of `crashPoints`).
 * Carried registration has no enlist: its point after the registrations are
 * durable takes after-enlist's place, so a seed draws the same numbers either way.
 */
export function crashPointsFor(carried: boolean): CrashPoint[] {
  return carried ? CRASH_POINTS.map((p): CrashPoint => (p === 'after-enlist' ? 'after-carried-registration' : p)) : [...CRASH_POINTS];
}

/**
 * How many of each kind one round holds. Every round is a seeded shuffle of
 * this deck, so after R rounds each kind has happened R times (or its
 * multiple): a short run still sees every kind, and the proportions stay put.
 */
export const PER_ROUND: Readonly<Record<FaultKind, number>> = {
  'coordinator-kill': 3,
  'coordinator-crash-point': 2,
  'coordinator-pause': 1,
  'service-kill': 2,
  'service-pause': 1,
  'db-crash': 1,
  'link-delay': 1,
  'link-refuse': 1,
  'link-blackhole': 1,
  'link-reset': 2,
  'link-cut': 2,
  'disk-full': 1,
  'disk-io-error': 1,
  'store-crash': 1,
};

/** One fault, fully drawn from the seed. */
export interface FaultEvent {
  seq: number;
  round: number;
  kind: FaultKind;
  /** Wait after the previous fault started. */
  gapMs: number;
  /** Ledger (service, link) or cluster number, for the kinds that have one. */
  target: number;
  /** How long a pause, link mode or outage lasts. */
  durationMs: number;
  /** How long a killed process or crashed cluster stays down. */
  downMs: number;
  /** Link faults: the coordinator's calls to the service (`inbound`) or the service's calls to the coordinator (`outbound`). */
  link: 'inbound' | 'outbound';
  /** Link faults: the mode set for `durationMs`. */
  mode: LinkMode;
  /** Crash points: where, and at which hit. */
  crashAt: { point: CrashPoint; hit: number };
  /** Disk faults: the n-th write (or fdatasync) fails. */
  diskAt: number;
  /** Several instances: the coordinator instance a coordinator fault is meant for (another is taken if it is busy). */
  instance: number;
  /** Several instances: a killed instance stays down (a paused one stopped) past its lease, so another must take it over, instead of `downMs` (`durationMs`). */
  pastLeaseMs?: number;
}

export interface ScheduleOptions {
  /** Kinds to inject (others are left out of every round). */
  kinds: readonly FaultKind[];
  /** Mean gap between two faults; each gap is drawn from [0.25, 1.75] of it. */
  meanGapMs: number;
  ledgers: number;
  clusters: number;
  /** The crash points `coordinator-crash-point` draws from (default CRASH_POINTS). */
  crashPoints?: readonly CrashPoint[];
  /** Coordinator instances (default 1). With more, `instanceRng` draws which one each fault hits. */
  instances?: number;
  /** The instances' lease: how long an instance left dead "past its lease" stays down is drawn from it. */
  leaseMs?: number;
  /**
   * A stream of its own for what only several instances need, so that a run
   * with one instance draws exactly the numbers it always drew.
   */
  instanceRng?: Rng;
}

/**
 * The fault schedule: an endless, seed-determined sequence of faults, in
 * rounds. The sequence (kinds, targets, parameters, gaps) depends only on the
 * seed; how each fault meets the traffic depends on timing, which no seed fixes.
 */
export class FaultSchedule {
  private deck: FaultKind[] = [];
  private seq = 0;
  private round = 0;

  constructor(
    private readonly rng: Rng,
    private readonly o: ScheduleOptions,
  ) {
    if (o.kinds.length === 0) throw new Error('a fault schedule needs at least one kind');
  }

  /** Faults in one round. */
  get roundSize(): number {
    return this.o.kinds.reduce((n, k) => n + PER_ROUND[k], 0);
  }

  next(): FaultEvent {
    if (this.deck.length === 0) {
      this.round += 1;
      this.deck = this.rng.shuffle(this.o.kinds.flatMap((k) => Array.from({ length: PER_ROUND[k] }, () => k)));
    }
    const kind = this.deck.shift()!;
    const r = this.rng;
    // Every parameter is drawn for every event, whatever its kind, so one kind's needs never shift the stream.
    const gapMs = Math.round(this.o.meanGapMs * (0.25 + 1.5 * r.next()));
    const ledger = r.int(0, this.o.ledgers - 1);
    const cluster = r.int(0, this.o.clusters - 1);
    const durationMs = r.int(400, 2_500);
    const downMs = r.int(0, 1_500);
    const link = r.chance(0.6) ? ('inbound' as const) : ('outbound' as const);
    const delayMs = r.int(50, 1_200);
    const cutBytes = r.int(1, 600);
    const point = r.pick(this.o.crashPoints ?? CRASH_POINTS);
    const hit = r.int(1, 6);
    const diskAt = r.int(5, 60);
    const mode: LinkMode =
      kind === 'link-delay' ? { kind: 'delay', ms: delayMs }
      : kind === 'link-refuse' ? { kind: 'refuse' }
      : kind === 'link-blackhole' ? { kind: 'blackhole' }
      : kind === 'link-cut' ? { kind: 'cut', afterBytes: cutBytes }
      : { kind: 'pass' };
    return {
      seq: ++this.seq,
      round: this.round,
      kind,
      gapMs,
      target: kind === 'db-crash' ? cluster : ledger,
      durationMs,
      downMs,
      link,
      mode,
      crashAt: { point, hit },
      diskAt,
      ...this.drawInstance(kind),
    };
  }

  private drawInstance(kind: FaultKind): { instance: number; pastLeaseMs?: number } {
    const r = this.o.instanceRng;
    const instances = this.o.instances ?? 1;
    if (!r || instances < 2) return { instance: 0 };
    const instance = r.int(0, instances - 1);
    // A third of the kills leave the instance dead past its lease: another instance must take its transactions over;
    // a third of the pauses last past it: the instance must find itself fenced when it wakes up, and register again.
    const pastLease = r.chance(1 / 3);
    const pastLeaseMs = (this.o.leaseMs ?? 2_000) + r.int(500, 1_500);
    return (kind === 'coordinator-kill' || kind === 'coordinator-pause') && pastLease ? { instance, pastLeaseMs } : { instance };
  }
}

/**
 * Parses a comma-separated list of kinds (names from ALL_FAULT_KINDS, or
 * `none`); `all` is undefined: every kind that applies to the run's log.
 */
export function parseFaultKinds(spec: string): FaultKind[] | undefined {
  if (spec.trim() === 'all') return undefined;
  if (spec.trim() === 'none') return [];
  const kinds = spec.split(',').map((s) => s.trim()).filter(Boolean);
  for (const k of kinds) {
    if (!(ALL_FAULT_KINDS as readonly string[]).includes(k)) throw new Error(`unknown fault kind ${JSON.stringify(k)}; kinds: ${ALL_FAULT_KINDS.join(', ')}`);
  }
  return kinds as FaultKind[];
}
