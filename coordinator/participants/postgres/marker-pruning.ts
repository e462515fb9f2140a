import { DEFAULT_PRUNE_INTERVAL_MS, MAX_TIMER_MS } from '../../../participant-sdk/src';
import type { EngineLogger } from '../../engine/ports/logger';
import { errorMessage, isTwopcError } from '../../engine/ports/protocol';

export { DEFAULT_PRUNE_INTERVAL_MS, MAX_TIMER_MS };

/** The code of the warning a failed pass logs, per database (a stable field to alert or grep on). */
export const MARKER_PRUNE_FAILED = 'marker-prune-failed';

/** What pruning needs of a database: the SDK's `PostgresParticipant.pruneMarkers` (retention: the database's own `markerRetentionMs`). */
export interface MarkerPruner {
  readonly name: string;
  /** `signal`: ends the call after the batch in progress (the SDK's PostgresParticipant.pruneMarkers). */
  pruneMarkers(olderThanMs?: number, options?: { signal?: AbortSignal }): Promise<number>;
}

/** Whether a configured database prunes markers (a PostgresParticipant does; another BranchOpener may not). */
export function prunesMarkers<T extends object>(db: T): db is T & MarkerPruner {
  return typeof (db as Partial<MarkerPruner>).pruneMarkers === 'function' && typeof (db as Partial<MarkerPruner>).name === 'string';
}

export interface MarkerPruningOptions {
  databases: readonly MarkerPruner[];
  /** How often; 0 turns it off. Default DEFAULT_PRUNE_INTERVAL_MS (1 h), the SDK's `pruneIntervalMs`. */
  intervalMs?: number;
  logger: EngineLogger;
}

/**
 * Prunes `twopc_marker` in the coordinator's own databases every interval,
 * as the SDK's participant services do in theirs: a one-phase commit writes
 * a marker in every proof mode (and a prepared branch does under `marker`),
 * so without it the table grows by a row per commit for ever. One database's
 * failure is a warning (MARKER_PRUNE_FAILED) and never stops the others or
 * the next pass: pruning late only keeps rows longer. The timer is unref'd.
 *
 * @example
 * const pruning = new MarkerPruning({ databases: [orders, stock], logger });
 * pruning.start();
 * await pruning.stop();
 */
export class MarkerPruning {
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private readonly stopping = new AbortController();

  constructor(private readonly options: MarkerPruningOptions) {
    this.intervalMs = options.databases.length === 0 ? 0 : (options.intervalMs ?? DEFAULT_PRUNE_INTERVAL_MS);
  }

  start(): void {
    if (this.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      // A pass slower than the interval is not joined by a second one: that tick is skipped.
      this.running ??= this.pruneOnce().finally(() => (this.running = undefined));
    }, Math.min(this.intervalMs, MAX_TIMER_MS));
    this.timer.unref();
  }

  /**
   * Stops the timer and waits for a pass in progress (it holds a connection
   * of a pool its owner ends next), which ends after the batch it is deleting:
   * a first pass over a long backlog (a coordinator that never pruned) can
   * take many, and a shutdown must not wait for all of them.
   */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass over every database, one after the other (a pass is rare and each is batched); how many each deleted (absent: it failed). */
  async pruneOnce(): Promise<Map<string, number>> {
    const pruned = new Map<string, number>();
    for (const db of this.options.databases) {
      if (this.stopping.signal.aborted) break;
      try {
        pruned.set(db.name, await db.pruneMarkers(undefined, { signal: this.stopping.signal }));
      } catch (e) {
        this.options.logger.warn(
          { code: MARKER_PRUNE_FAILED, participant: db.name, errCode: isTwopcError(e) ? e.code : undefined, err: errorMessage(e) },
          'twopc_marker pruning failed; the next interval tries again',
        );
      }
    }
    return pruned;
  }
}
