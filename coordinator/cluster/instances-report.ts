import type { LeaseView } from '../engine/ports/lease-store';

/** Where the leases are read from: a running instance's membership, or the store itself (offline CLI). */
export interface LeaseSource {
  /** Reads every lease now. */
  refresh(): Promise<LeaseView>;
  /** The reader's own lease token, if it holds one. */
  readonly token: number | undefined;
}

/** One coordinator instance's lease, as operators see it. */
export interface InstanceRow {
  token: number;
  name: string;
  url: string;
  /** ISO time, by the store's clock. */
  expiresAt: string;
  /** `self`: the instance answering; `live`: holds its lease; `expired`: not renewed, not yet taken over; `taken-over`: its transactions are `takenOverBy`'s. */
  state: 'self' | 'live' | 'expired' | 'taken-over';
  takenOverBy: number | null;
}

/** The instances sharing the decision log (`GET /v1/admin/instances`, `twopc instances`). */
export interface InstancesReport {
  /** The log's kind: `file` (one instance: no leases), `postgres`, `redis`. */
  store: string;
  /** The answering instance's lease token; null on a file log or while it holds none. */
  self: number | null;
  instances: InstanceRow[];
}

/** Reads the leases now (a fresh view) and labels each one. */
export async function instancesReport(store: string, source: LeaseSource | undefined): Promise<InstancesReport> {
  if (!source) return { store, self: null, instances: [] };
  const view = await source.refresh();
  const self = source.token ?? null;
  const instances = view.leases.map((lease): InstanceRow => {
    const state = lease.token === self ? 'self' : lease.takenOverBy !== undefined ? 'taken-over' : lease.expiresAt < view.now ? 'expired' : 'live';
    return { token: lease.token, name: lease.name, url: lease.url, expiresAt: new Date(lease.expiresAt).toISOString(), state, takenOverBy: lease.takenOverBy ?? null };
  });
  return { store, self, instances };
}
