import { Client, Pool } from 'pg';
import { applyMigrations, type SchemaMigration } from '../../participant-sdk/src/postgres';
import { PgCluster } from '../../harness/pg-cluster';

const DB = 'schema_migrations';

const table = (name: string, version: number): SchemaMigration => ({ version, name: `create ${name}`, up: (s) => `CREATE TABLE "${s}".${name} (id int)` });

describe('applyMigrations (the SDK runner the marker schema and the PostgreSQL decision log share)', () => {
  let cluster: PgCluster;
  let admin: Client;
  let pool: Pool;

  const versions = async (schema: string, migrationsTable: string): Promise<number[]> =>
    (await admin.query(`SELECT version FROM "${schema}"."${migrationsTable}" ORDER BY version`)).rows.map((r) => Number(r.version));
  const run = async (set: Parameters<typeof applyMigrations>[1]): Promise<number[]> => {
    const client = await pool.connect();
    try {
      return await applyMigrations(client, set);
    } finally {
      client.release();
    }
  };

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'schema-migrations' });
    await cluster.createDatabase(DB);
    admin = new Client(cluster.connectionConfig(DB));
    await admin.connect();
    pool = new Pool({ ...cluster.connectionConfig(DB), max: 8 });
  });

  afterAll(async () => {
    await pool?.end();
    await admin?.end();
    await cluster?.destroy();
  });

  it('applies each migration once with concurrent starters, and two sets in one schema each on their own', async () => {
    const a = { schema: 'shared_a', table: 'a_migrations', lockKey: 'test:a:shared_a', migrations: [table('a1', 1), table('a2', 2)] };
    const b = { schema: 'shared_a', table: 'b_migrations', lockKey: 'test:b:shared_a', migrations: [table('b1', 1)] };
    expect((await Promise.all([run(a), run(a), run(a)])).flat().sort()).toEqual([1, 2]);
    expect((await Promise.all([run(b), run(b)])).flat()).toEqual([1]);
    expect(await versions('shared_a', 'a_migrations')).toEqual([1, 2]);
    expect(await versions('shared_a', 'b_migrations')).toEqual([1]);
    // A later release adds a version: only it is applied.
    expect(await run({ ...a, migrations: [...a.migrations, table('a3', 3)] })).toEqual([3]);
  });

  it('two sets creating the same new schema at once both succeed (they take turns on the schema first)', async () => {
    for (let round = 0; round < 5; round += 1) {
      const schema = `fresh_${round}`;
      const x = { schema, table: 'x_migrations', lockKey: `test:x:${schema}`, migrations: [table('x1', 1)] };
      const y = { schema, table: 'y_migrations', lockKey: `test:y:${schema}`, migrations: [table('y1', 1)] };
      expect((await Promise.all([run(x), run(y), run(x), run(y)])).flat()).toEqual([1, 1]);
    }
  });

  it('leaves a newer schema as is, unless the set refuses it (then nothing is applied)', async () => {
    const newer = { schema: 'newer', table: 'n_migrations', lockKey: 'test:n', migrations: [table('n1', 1), table('n2', 2)] };
    await run(newer);
    const older = { ...newer, migrations: [table('n1', 1)] };
    expect(await run(older)).toEqual([]);
    await expect(run({ ...older, refuseNewer: (found, known) => new Error(`layout ${found} is newer than ${known}`) })).rejects.toThrow('layout 2 is newer than 1');
    expect(await versions('newer', 'n_migrations')).toEqual([1, 2]);
  });

  it('a migration that fails leaves the previous version: nothing of the run stays', async () => {
    const set = { schema: 'failing', table: 'f_migrations', lockKey: 'test:f', migrations: [table('f1', 1)] };
    await run(set);
    const broken: SchemaMigration = { version: 3, name: 'broken', up: (s) => `CREATE TABLE "${s}".f3 (id int); SELECT 1 / 0` };
    await expect(run({ ...set, migrations: [...set.migrations, table('f2', 2), broken] })).rejects.toThrow(/division by zero/);
    expect(await versions('failing', 'f_migrations')).toEqual([1]);
    const left = await admin.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'failing' ORDER BY 1`);
    expect(left.rows.map((r) => r.table_name)).toEqual(['f1', 'f_migrations']);
  });

  it('refuses a table name it could not splice safely', async () => {
    await expect(run({ schema: 'ok', table: 'bad"name', lockKey: 'test:bad', migrations: [] })).rejects.toMatchObject({ code: 'invalid-config' });
  });
});
