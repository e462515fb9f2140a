import { Pool } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { buildGid } from '../../participant-sdk/src/gid';
import { PostgresParticipant } from '../../participant-sdk/src/postgres/postgres-participant';
import { PgCluster } from '../../harness/pg-cluster';

// Found by the long chaos run (seed 42): a one-phase commit is the transaction's decision, and
// with the database's synchronous_commit off (as on these test clusters) PostgreSQL acknowledged
// the COMMIT before its WAL left shared memory, so an immediate stop right after lost it.
describe('one-phase commit durability', () => {
  let cluster: PgCluster;

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'one-phase' });
    await cluster.createDatabase('ledger');
    await cluster.withClient(async (c) => {
      await c.query('create table items (id text primary key)');
      const setting = await c.query('show synchronous_commit');
      expect(setting.rows[0].synchronous_commit).toBe('off');
    }, 'ledger');
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('an acknowledged one-phase commit survives an immediate stop right after it, whatever synchronous_commit says', async () => {
    const committed: string[] = [];
    for (let i = 0; i < 8; i += 1) {
      const pool = new Pool({ ...cluster.connectionConfig('ledger'), max: 2 });
      pool.on('error', () => undefined);
      const participant = new PostgresParticipant({ name: 'ledger', pool });
      await participant.start();
      const txId = uuidv7();
      const ref = { txId, branchId: 1, gid: buildGid('twopc', txId, 1), participant: 'ledger' };
      const branch = await participant.openBranch(ref);
      await branch.query('insert into items (id) values ($1)', [txId]);
      await participant.commit(ref, { onePhase: true });
      committed.push(txId);
      await cluster.crash();
      await participant.close().catch(() => undefined);
      await pool.end().catch(() => undefined);
      await cluster.startServer();
    }
    const rows = await cluster.withClient((c) => c.query<{ id: string }>('select id from items'), 'ledger');
    expect(rows.rows.map((r) => r.id).sort()).toEqual(committed.sort());
    await cluster.assertNoPrepared('twopc');
  });
});
