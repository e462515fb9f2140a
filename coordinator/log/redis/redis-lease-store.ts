import type { InstanceLease, LeaseStore, LeaseView } from '../../engine/ports/lease-store';
import type { LogKeys } from './redis-keys';
import { PRUNE_LEASES, REGISTER_LEASE, RELEASE_LEASE, RENEW_LEASE, TAKE_OVER_LEASE, VIEW_LEASES, type LuaScript } from './redis-scripts';

type RunScript = (operation: string, script: LuaScript, keys: string[], args: Array<string | number>) => Promise<unknown>;

/**
 * Leases in the Redis log's hash slot (one hash per lease, a sorted set of
 * tokens, a token counter). Every operation is one script: atomic, judged by
 * the server's clock, and safe to resend (a resent register only leaves an
 * unused lease that expires). `onToken` tells the log which token its writes
 * must carry (see APPLY_BATCH's fence).
 */
export class RedisLeaseStore implements LeaseStore {
  constructor(
    private readonly keys: LogKeys,
    private readonly run: RunScript,
    private readonly onToken: (token: number) => void,
  ) {}

  async register(name: string, url: string, leaseMs: number): Promise<InstanceLease> {
    const [token, expiresAt] = (await this.run('lease register', REGISTER_LEASE, [this.keys.leaseTokens, this.keys.leases, this.keys.lease('')], [name, url, leaseMs])) as [number, string];
    this.onToken(Number(token));
    return { token: Number(token), name, url, expiresAt: Number(expiresAt) };
  }

  async renew(token: number, leaseMs: number): Promise<boolean> {
    return Number(await this.run('lease renew', RENEW_LEASE, [this.keys.lease(token)], [leaseMs])) === 1;
  }

  async takeOver(token: number, by: number, options: { evenIfLive?: boolean } = {}): Promise<boolean> {
    return Number(await this.run('lease takeover', TAKE_OVER_LEASE, [this.keys.lease(token)], [token, by, options.evenIfLive ? '1' : '0'])) === 1;
  }

  async view(): Promise<LeaseView> {
    const [now, ...rows] = (await this.run('lease view', VIEW_LEASES, [this.keys.leases, this.keys.lease('')], [])) as [string, ...string[][]];
    const leases = rows.map(([token, name, url, expiresAt, takenOverBy]) => {
      const lease: InstanceLease = { token: Number(token), name, url, expiresAt: Number(expiresAt) };
      if (takenOverBy !== '') lease.takenOverBy = Number(takenOverBy);
      return lease;
    });
    return { now: Number(now), leases };
  }

  async release(token: number): Promise<void> {
    await this.run('lease release', RELEASE_LEASE, [this.keys.lease(token)], []);
  }

  async prune(olderThanMs: number): Promise<number> {
    return Number(await this.run('lease prune', PRUNE_LEASES, [this.keys.leases, this.keys.lease(''), this.keys.unfinished, this.keys.records('')], [olderThanMs]));
  }
}
