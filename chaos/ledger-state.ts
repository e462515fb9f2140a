import { Client } from 'pg';
import { parseProof } from '../participant-sdk/src/postgres/commit-proof';
import { CLUSTER_HISTORY } from '../participant-sdk/src/postgres/xid-proof-sql';
import type { BankTopology, Ledger } from './bank-topology';

/** A leg as a ledger holds it (a `transfers` row). */
export interface StoredLeg {
  leg: number;
  account: number;
  delta: number;
}

/** What one ledger database holds after the run. */
export interface LedgerSnapshot {
  index: number;
  name: string;
  /** Sum of all balances. */
  balanceTotal: number;
  accounts: number;
  /** Transaction id → the legs committed here. */
  transfers: Map<string, StoredLeg[]>;
  /**
   * Transaction id → the GIDs of its branches here that PostgreSQL proves
   * committed, whichever commit proof they ran under: a visible
   * `twopc_marker` row, or (commitProof `xid`) the xid their commit decision
   * recorded, which `pg_xact_status` reports committed.
   */
  markers: Map<string, string[]>;
}

/** A branch's proof, as its transaction's commit decision recorded it (commitProof `xid`: `<cluster history>:<xid8>`, or a bare xid8). */
export interface BranchXid {
  txId: string;
  gid: string;
  xid: string;
}

/** A prepared transaction left in a cluster. */
export interface PreparedLeft {
  cluster: number;
  gid: string;
}

/**
 * Reads a ledger's balances, transfers and committed branches in one
 * snapshot; `xids` are the branches of this ledger whose commit decisions
 * carry an xid (none for branches of participant services, which write markers).
 */
export async function readLedger(ledger: Pick<Ledger, 'index' | 'name' | 'databaseUrl'>, xids: readonly BranchXid[] = []): Promise<LedgerSnapshot> {
  const client = new Client({ connectionString: ledger.databaseUrl });
  await client.connect();
  try {
    await client.query('begin isolation level repeatable read');
    const totals = await client.query<{ total: string; n: string }>('select coalesce(sum(balance), 0)::text as total, count(*)::text as n from accounts');
    const rows = await client.query<{ tx_id: string; leg: number; account: number; delta: string }>('select tx_id, leg, account, delta::text from transfers order by tx_id, leg');
    const markerRows = await client.query<{ tx_id: string; gid: string }>('select tx_id::text, gid from twopc_marker');
    const proofs = xids.map((b) => parseProof(b.xid));
    const provenRows =
      xids.length === 0
        ? []
        : (await client.query<{ tx_id: string; gid: string }>(XID_COMMITTED, [xids.map((b) => b.txId), xids.map((b) => b.gid), proofs.map((p) => p.xid), proofs.map((p) => p.cluster ?? null)])).rows;
    await client.query('commit');
    const transfers = new Map<string, StoredLeg[]>();
    for (const r of rows.rows) {
      const legs = transfers.get(r.tx_id) ?? [];
      legs.push({ leg: r.leg, account: r.account, delta: Number(r.delta) });
      transfers.set(r.tx_id, legs);
    }
    const markers = new Map<string, string[]>();
    for (const r of [...markerRows.rows, ...provenRows]) markers.set(r.tx_id, [...(markers.get(r.tx_id) ?? []), r.gid]);
    return { index: ledger.index, name: ledger.name, balanceTotal: Number(totals.rows[0].total), accounts: Number(totals.rows[0].n), transfers, markers };
  } finally {
    await client.end().catch(() => undefined);
  }
}

// $1 tx ids, $2 gids, $3 xids (decimal xid8), $4 the cluster history each was read in (null: a bare
// xid): the branches among them whose transaction committed. An xid of another cluster history (a
// restored or promoted server) names some other transaction: never looked up, never counted.
const XID_COMMITTED = `select b.tx_id, b.gid from unnest($1::text[], $2::text[], $3::text[], $4::text[]) as b(tx_id, gid, xid, cluster),
    (select ${CLUSTER_HISTORY} as cluster) c
  where case when b.cluster is null or b.cluster = c.cluster then pg_xact_status(b.xid::xid8) = 'committed' else false end`;

/** Prepared transactions with our GID prefix, in every cluster (any database). */
export async function preparedLeft(t: BankTopology, prefix: string): Promise<PreparedLeft[]> {
  const lists = await Promise.all(t.clusters.map(async (cluster, i) => (await cluster.preparedGids(prefix)).map((gid) => ({ cluster: i, gid }))));
  return lists.flat();
}
