import type { InstanceLease, LeaseStore, LeaseView } from '../../engine/ports/lease-store';
import * as sql from './postgres-log-sql';

type Query = (operation: string, text: string, values?: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }>;

/**
 * Leases in the PostgreSQL log's schema (table `twopc_log_leases`, migration
 * 2). Expiry is judged by the server's clock. `onToken` tells the log which
 * token its writes must carry (see writeBatch's fence).
 */
export class PostgresLeaseStore implements LeaseStore {
  constructor(
    private readonly schema: string,
    private readonly query: Query,
    private readonly onToken: (token: number) => void,
  ) {}

  async register(name: string, url: string, leaseMs: number): Promise<InstanceLease> {
    const { rows } = await this.query('lease register', sql.registerLease(this.schema), [name, url, leaseMs]);
    const token = Number(rows[0].token);
    this.onToken(token);
    return { token, name, url, expiresAt: Number(rows[0].expires_at) };
  }

  async renew(token: number, leaseMs: number): Promise<boolean> {
    const { rows } = await this.query('lease renew', sql.renewLease(this.schema), [token, leaseMs]);
    return rows.length === 1;
  }

  async takeOver(token: number, by: number, options: { evenIfLive?: boolean } = {}): Promise<boolean> {
    const { rows } = await this.query('lease takeover', sql.takeOverLease(this.schema), [token, by, options.evenIfLive === true]);
    return rows.length === 1;
  }

  async view(): Promise<LeaseView> {
    const { rows } = await this.query('lease view', sql.leaseView(this.schema));
    const leases = rows.map((r) => {
      const lease: InstanceLease = { token: Number(r.token), name: String(r.name), url: String(r.url), expiresAt: Number(r.expires_at) };
      if (r.taken_over_by !== null) lease.takenOverBy = Number(r.taken_over_by);
      return lease;
    });
    // An empty table still needs the clock.
    const now = rows.length > 0 ? Number(rows[0].now) : Number((await this.query('lease view', 'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::double precision AS now')).rows[0].now);
    return { now, leases };
  }

  async release(token: number): Promise<void> {
    await this.query('lease release', sql.releaseLease(this.schema), [token]);
  }

  async prune(olderThanMs: number): Promise<number> {
    const result = (await this.query('lease prune', sql.pruneLeases(this.schema), [olderThanMs])) as { rows: unknown[]; rowCount?: number | null };
    return result.rowCount ?? 0;
  }
}
