import { Pool } from 'pg';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { bankSchemaSql } from '../../chaos/bank-schema';
import { readLedger } from '../../chaos/ledger-state';
import { PgCluster } from '../../harness/pg-cluster';
import { PREFIX, newBranch } from '../participants/postgres-fixture';

/**
 * The chaos checker's "which branches committed here" holds under both
 * commit proofs: a marker row (participant services, commitProof marker), or
 * the xid a commit decision recorded, asked of pg_xact_status (commitProof xid).
 */
describe('chaos ledger state: committed branches by marker or by xid', () => {
  let cluster: PgCluster;
  let pool: Pool;

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'ledger-proofs' });
    await cluster.createDatabase('ledger');
    pool = new Pool({ ...cluster.connectionConfig('ledger'), max: 4 });
    await pool.query(bankSchemaSql(4, 100));
  });

  afterAll(async () => {
    await pool?.end();
    await cluster?.destroy();
  });

  afterEach(async () => {
    await cluster.assertNoPrepared(PREFIX);
  });

  it('finds a committed branch of either proof, and neither a rolled-back one nor one whose xid aborted', async () => {
    const marker = new PostgresParticipant({ name: 'ledger', pool, commitProof: 'marker' });
    const xid = new PostgresParticipant({ name: 'ledger', pool, commitProof: 'xid' });
    await marker.start();
    const run = async (p: PostgresParticipant, outcome: 'commit' | 'rollback') => {
      const ref = newBranch('ledger');
      await (await p.openBranch(ref)).query('insert into transfers (tx_id, leg, account, delta) values ($1, 0, 1, 5)', [ref.txId]);
      const vote = await p.prepare(ref);
      const proven = { ...ref, ...('xid' in vote ? { xid: vote.xid } : {}) };
      if (outcome === 'commit') await p.commit(proven);
      else await p.rollback(proven);
      return proven;
    };
    const byMarker = await run(marker, 'commit');
    const byXid = await run(xid, 'commit');
    const xidAborted = await run(xid, 'rollback');
    expect(byXid.xid).toBeDefined();
    expect(xidAborted.xid).toBeDefined();
    const ledger = { index: 0, name: 'ledger_0', databaseUrl: cluster.connectionString('ledger') };
    const xids = [byXid, xidAborted].map((b) => ({ txId: b.txId, gid: b.gid, xid: b.xid! }));

    const snapshot = await readLedger(ledger, xids);
    expect([...snapshot.markers.entries()].sort()).toEqual([[byMarker.txId, [byMarker.gid]], [byXid.txId, [byXid.gid]]].sort());
    // Without the decisions' xids only the marker proves anything: the xid branch reads as uncommitted.
    expect([...(await readLedger(ledger)).markers.keys()]).toEqual([byMarker.txId]);
    // A proof read in another cluster history names some other transaction: it proves nothing here.
    const elsewhere = xids.map((b) => ({ ...b, xid: `1.1:${b.xid.slice(b.xid.lastIndexOf(':') + 1)}` }));
    expect([...(await readLedger(ledger, elsewhere)).markers.keys()]).toEqual([byMarker.txId]);
    expect([...snapshot.transfers.keys()].sort()).toEqual([byMarker.txId, byXid.txId].sort());
    await Promise.all([marker.close(), xid.close()]);
  });
});
