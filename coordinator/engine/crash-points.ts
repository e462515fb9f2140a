import { TwopcError } from './ports/protocol';

/**
 * Named points of the protocol where a crash test may kill the process. Each
 * sits in a distinct crash window; test/crash enumerates all of them.
 */
export const CRASH_POINTS = [
  'after-enlist', // branch registered, work not yet prepared
  'after-prepare-one', // one branch prepared, others may not be
  'after-prepare-all', // every branch voted yes, no decision yet
  'after-commit-decision', // commit decision durable, no COMMIT PREPARED sent
  'after-commit-one', // one branch committed, others still prepared
  'after-commit-all', // phase 2 acknowledged everywhere, `complete` not written
  'after-one-phase-commit', // the only branch committed in one phase, nothing logged but begin and enlist
  'after-abort-decision', // abort decided, no rollback sent
  'after-rollback-one', // one branch rolled back, others may still be prepared
] as const;

/**
 * Points only carried registration reaches (docs/protocol.md): kept out of
 * CRASH_POINTS, whose every point the enlisting crash tests reach.
 */
export const CARRIED_CRASH_POINTS = [
  'after-carried-registration', // a carried commit's (or abort's) registrations durable, no PREPARE (or abort decision) sent
] as const;
/** A point an enlisted transaction reaches (the enlisting crash tests run each). */
export type EnlistedCrashPoint = (typeof CRASH_POINTS)[number];
export type CrashPoint = EnlistedCrashPoint | (typeof CARRIED_CRASH_POINTS)[number];
const ALL_CRASH_POINTS: readonly string[] = [...CRASH_POINTS, ...CARRIED_CRASH_POINTS];

/**
 * Environment variable: `<point>` or `<point>:<n>` to crash at the n-th time
 * the point is reached. A test-only switch (see chaos/test-switches.ts):
 * refused unless NODE_ENV=test.
 */
export const CRASH_ENV = 'TWOPC_CRASH_AT';

/**
 * Kills the process with SIGKILL at a named point. Created once from the
 * environment and passed in; a disarmed instance costs one comparison.
 */
export class CrashPoints {
  private remaining: number;

  constructor(
    private readonly point: CrashPoint | undefined,
    hits = 1,
    private readonly kill: () => void = () => process.kill(process.pid, 'SIGKILL'),
  ) {
    this.remaining = hits;
  }

  static disarmed(): CrashPoints {
    return new CrashPoints(undefined);
  }

  /**
   * Armed from TWOPC_CRASH_AT, only under NODE_ENV=test. Anywhere else a set
   * variable is refused with `invalid-config`: an application embedding the
   * coordinator must never SIGKILL itself mid-commit because a crash-test
   * variable leaked into its environment.
   */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): CrashPoints {
    const spec = env[CRASH_ENV];
    if (!spec) return CrashPoints.disarmed();
    if (env.NODE_ENV !== 'test') {
      throw new TwopcError('invalid-config', `${CRASH_ENV} is a test-only switch that kills the process on purpose; it is refused unless NODE_ENV=test`, { field: CRASH_ENV });
    }
    const [name, count] = spec.split(':');
    if (!ALL_CRASH_POINTS.includes(name)) {
      throw new TwopcError('invalid-config', `${CRASH_ENV} must be one of ${ALL_CRASH_POINTS.join(', ')} (got ${JSON.stringify(name)})`, { field: CRASH_ENV });
    }
    const hits = count === undefined ? 1 : Number(count);
    if (!Number.isInteger(hits) || hits < 1) {
      throw new TwopcError('invalid-config', `${CRASH_ENV} hit count must be an integer >= 1 (got ${JSON.stringify(count)})`, { field: CRASH_ENV });
    }
    return new CrashPoints(name as CrashPoint, hits);
  }

  /** Whether `point` is the one armed: a caller may then skip the work of reaching it (a promise hop). */
  armedAt(point: CrashPoint): boolean {
    return point === this.point;
  }

  hit(point: CrashPoint): void {
    if (point !== this.point) return;
    this.remaining -= 1;
    if (this.remaining === 0) this.kill();
  }
}
