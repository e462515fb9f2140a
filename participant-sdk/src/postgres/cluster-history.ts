import { POSTMASTER_STARTED, clusterColumns } from './xid-proof-sql';

// Which cluster history a branch's xid belongs to, read in its PREPARE round
// trip at a fraction of CLUSTER_HISTORY's price (xid-proof-sql.ts; the same
// value, `<system identifier>.<timeline>`). Its two halves change for
// different reasons, so they are read differently:
//
// - The timeline changes while a server runs (a standby promoted, an archive
//   recovery ending after a crash restart): it is read in every PREPARE round
//   trip. As the hex text of the WAL file name it costs next to nothing; the
//   bit-string conversion CLUSTER_HISTORY does in SQL costs as much as the
//   control file read, so it is done here.
// - The system identifier is fixed when the data directory is made (initdb),
//   and a postmaster serves one data directory for its whole life, crash
//   restarts included: pg_control_system() reads and CRC-checks the control
//   file every time, so it is read once per connection and kept with the
//   postmaster's start time. Every later PREPARE round trip on that connection
//   compares the start time of the postmaster answering it (a variable, not a
//   file) and reads the control file again only when it differs: a client that
//   a transaction-mode pooler routed to another server gets the other server's
//   identifier in the same round trip, never the remembered one.

const HEX_TIMELINE = /^[0-9A-F]{8}$/;
const SYSTEM_IDENTIFIER = /^-?[0-9]{1,20}$/;

/** What a connection's first PREPARE round trip learned: the cluster's system identifier, and the postmaster it came from. */
interface KnownSystem {
  system: string;
  started: string;
}

/**
 * The system identifiers this participant's connections have read, one per
 * connection object (a pg client is one socket for life; a new one is a new
 * key and reads afresh).
 */
export class ClusterHistories {
  private readonly known = new WeakMap<object, KnownSystem>();

  /**
   * The select-list columns that give this connection's cluster history in
   * the PREPARE round trip: `timeline` always; `system` (null when the
   * remembered one still holds) and, until one is remembered, `started`.
   */
  columns(client: object): string {
    return clusterColumns(this.known.get(client)?.started);
  }

  /**
   * The cluster history `<system identifier>.<timeline>` from the row the
   * columns gave, remembering the system identifier for the connection's next
   * PREPARE (or forgetting it when another postmaster answered). Undefined if
   * the row does not hold one (the caller then has no proof to vote with).
   */
  fromRow(client: object, row: Record<string, unknown> | undefined): string | undefined {
    const timeline = row?.timeline;
    if (typeof timeline !== 'string' || !HEX_TIMELINE.test(timeline)) return undefined;
    const read = row?.system;
    let system: string | undefined;
    if (read === null) {
      system = this.known.get(client)?.system;
    } else if (typeof read === 'string' && SYSTEM_IDENTIFIER.test(read)) {
      system = read;
      const started = row?.started;
      if (typeof started === 'string' && POSTMASTER_STARTED.test(started)) this.known.set(client, { system, started });
      else this.known.delete(client);
    }
    return system === undefined ? undefined : `${system}.${parseInt(timeline, 16)}`;
  }
}
