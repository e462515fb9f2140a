import { PgCluster } from '../../harness/pg-cluster';

describe('PgCluster harness', () => {
  let cluster: PgCluster;
  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'harness' });
  });
  afterAll(async () => {
    await cluster.destroy();
  });

  it('has prepared transactions enabled and keeps them across a crash', async () => {
    const db = 'harness_check';
    await cluster.createDatabase(db);
    await cluster.withClient(async (c) => {
      const r = await c.query('show max_prepared_transactions');
      expect(Number(r.rows[0].max_prepared_transactions)).toBeGreaterThan(0);
      await c.query('create table t (x int)');
      await c.query('begin');
      await c.query('insert into t values (1)');
      await c.query("prepare transaction 'harness_00000000000000000000000000000000_1'");
    }, db);
    expect(await cluster.preparedGids('harness')).toEqual(['harness_00000000000000000000000000000000_1']);
    await expect(cluster.assertNoPrepared('harness')).rejects.toThrow(/left behind/);
    await cluster.restart();
    expect(await cluster.preparedGids('harness')).toHaveLength(1);
    await cluster.withClient((c) => c.query("commit prepared 'harness_00000000000000000000000000000000_1'"), db);
    await cluster.assertNoPrepared('harness');
    const rows = await cluster.withClient((c) => c.query('select x from t'), db);
    expect(rows.rows).toEqual([{ x: 1 }]);
  });
});
