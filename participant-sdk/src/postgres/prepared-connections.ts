import type { PostgresPoolClient } from './postgres-pool';

interface Kept {
  client: PostgresPoolClient;
  onError: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Connections kept from a branch's PREPARE to its COMMIT or ROLLBACK PREPARED
 * (option keepPreparedConnections), so phase 2 needs no second checkout. Any
 * idle session may finish a prepared transaction, so using this one changes
 * nothing but the cost. A kept connection not asked for within `keepMs` (the
 * decision went to another process, or is late) goes back to the pool; one
 * whose server reported an error is destroyed instead.
 */
export class PreparedConnections {
  private readonly kept = new Map<string, Kept>();

  constructor(private readonly keepMs: number) {}

  /** Keeps `client` for `gid`; `onError` is its listener, removed when it goes. */
  keep(gid: string, client: PostgresPoolClient, onError: (err: Error) => void): void {
    let lost: Error | undefined;
    const listener = (err: Error): void => {
      lost ??= err;
      onError(err);
    };
    client.on('error', listener);
    const timer = setTimeout(() => {
      if (this.kept.get(gid)?.client === client) this.kept.delete(gid);
      PreparedConnections.giveBack({ client, onError: listener, timer }, lost);
    }, this.keepMs);
    timer.unref();
    this.release(gid);
    this.kept.set(gid, { client, onError: listener, timer });
  }

  /** The kept connection of `gid`, taken out (the caller gives it back with {@link giveBack}), or undefined. */
  take(gid: string): Kept | undefined {
    const kept = this.kept.get(gid);
    if (!kept) return undefined;
    this.kept.delete(gid);
    clearTimeout(kept.timer);
    return kept;
  }

  /** Gives back the connection kept for `gid`, if any. */
  release(gid: string): void {
    const kept = this.take(gid);
    if (kept) PreparedConnections.giveBack(kept);
  }

  releaseAll(): void {
    for (const gid of [...this.kept.keys()]) this.release(gid);
  }

  /** Back to the pool; with an error the pool destroys it. The listener goes after release (never a moment without one). */
  static giveBack(kept: Kept, err?: Error): void {
    kept.client.release(err);
    kept.client.removeListener('error', kept.onError);
  }
}
