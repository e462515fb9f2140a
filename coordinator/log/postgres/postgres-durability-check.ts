import type { TwopcError } from '../../engine/ports/protocol';
import { logNotDurable, notReplicated } from '../log-errors';

/** The settings the store's durability rests on, as `durabilitySettings` reads them on one of its connections (a row type: pg wants an index signature, which a type literal has). */
export type PostgresDurability = {
  fsync: string;
  synchronous_commit: string;
  unsynced_standbys: number;
};

/**
 * What would make an acknowledged decision losable, or undefined when
 * nothing does: a server with fsync off, connections on which our
 * synchronous_commit=on did not take (a pooler that drops startup options),
 * or standbys that commits do not wait for (a failover to one drops what it
 * had not received). Standbys attached later are caught by every decision
 * statement (see writeBatch).
 */
export function durabilityProblem(where: string, found: PostgresDurability): TwopcError | undefined {
  const { fsync, synchronous_commit: syncCommit, unsynced_standbys: standbys } = found;
  return syncCommit !== 'on'
    ? logNotDurable(
        where,
        `synchronous_commit is ${syncCommit} on this store's connections although it asks for on at connect (a connection pooler in between may drop startup options)`,
        'connect directly to PostgreSQL, or let the pooler pass the "options" startup parameter',
        { synchronous_commit: syncCommit },
      )
    : fsync !== 'on'
      ? logNotDurable(where, `the server runs with fsync=${fsync}, so a commit is not on disk when it returns`, 'set fsync = on in postgresql.conf and reload', { fsync })
      : standbys > 0
        ? logNotDurable(where, `${unsyncedText(standbys)}: a failover to one can drop a decision it had not received yet`, UNSYNCED_FIX, { standbys, synchronous_standby_names: '' })
        : undefined;
}

/** `standbys` stream from the server and no commit waits for them: `outcome` says what became of the call's write. */
export function unsyncedStandbys(where: string, operation: string, standbys: number, outcome: string): TwopcError {
  return notReplicated(where, operation, `${unsyncedText(standbys)}: a failover to one could drop it, ${outcome}`, UNSYNCED_FIX, { standbys });
}

const UNSYNCED_FIX =
  "name the standbys a failover may promote in synchronous_standby_names (e.g. 'ANY 1 (standby1, standby2)'), reload, and fail over only to a synchronous standby";

function unsyncedText(standbys: number): string {
  return `${standbys} standby${standbys === 1 ? '' : 's'} stream${standbys === 1 ? 's' : ''} from this server (pg_stat_replication) but synchronous_standby_names is empty, so no commit waits for ${standbys === 1 ? 'it' : 'them'}`;
}
