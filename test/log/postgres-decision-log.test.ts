import { PostgresDecisionLog, type PostgresDecisionLogOptions } from '../../coordinator/log/postgres/postgres-decision-log';
import { PgCluster } from '../harness/pg-cluster';
import { describeDecisionLogConformance } from './conformance';

const DB = 'twopc_log';
let cluster: PgCluster;
let url: string;
let schemas = 0;

beforeAll(async () => {
  cluster = await PgCluster.start({ name: 'pglog' });
  url = await cluster.createDatabase(DB);
});
afterAll(async () => {
  await cluster?.destroy();
});

/** A store on its own schema. The test clusters run with fsync=off (a process crash keeps the page cache), hence allowVolatile. */
function store(schema: string, options: Partial<PostgresDecisionLogOptions> = {}): PostgresDecisionLog {
  return new PostgresDecisionLog({ connectionString: url, schema, allowVolatile: true, onWarning: () => undefined, ...options });
}

function freshSchema(): string {
  return `log_${process.pid}_${++schemas}`;
}

async function dropSchema(schema: string): Promise<void> {
  if (process.env.TWOPC_KEEP_SCHEMAS === '1') return;
  await cluster.withClient((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`), DB);
}

describeDecisionLogConformance(
  'PostgresDecisionLog',
  async () => {
    const schema = freshSchema();
    return {
      create: (s) => store(schema, s),
      destroy: () => dropSchema(schema),
      crash: async () => {
        await cluster.crash();
        await cluster.startServer();
      },
    };
  },
  { sharedBackend: true, crash: true },
);
