import { PostgresDecisionLog } from '../../coordinator/log/postgres/postgres-decision-log';
import { PgCluster } from '../../harness/pg-cluster';

/**
 * Found with issue 10's finding 4 (the same flush is the fence that waits for
 * synchronous standbys): `PostgresDecisionLog.makeDurable`, which the engine
 * calls before a one-phase COMMIT so that the transaction's registration
 * survives a crash, committed `SELECT pg_current_xact_id()` on a
 * synchronous_commit=on connection. A transaction that only takes an xid
 * writes no WAL, and PostgreSQL neither flushes nor waits for standbys at
 * its commit: the registration, appended with synchronous_commit=off, could
 * still be in the server's WAL buffers when the one-phase COMMIT went out.
 * Real crash here: an immediate shutdown (SIGQUIT) loses WAL buffers not yet
 * written; the WAL writer is slowed to 10 s so it does not write them first.
 */

const DB = 'twopc_make_durable';
let cluster: PgCluster;
let url: string;

beforeAll(async () => {
  cluster = await PgCluster.start({ name: 'make-durable', durable: true, settings: { wal_writer_delay: '10000ms' } });
  url = await cluster.createDatabase(DB);
});
afterAll(async () => {
  await cluster?.destroy();
});

it('appends made durable before a one-phase commit survive a crash of the log server', async () => {
  const schema = `durable_${process.pid}`;
  const log = new PostgresDecisionLog({ connectionString: url, schema });
  await log.open();
  const at = Date.now();
  await log.append({ type: 'begin', txId: 'tx-1pc', at, expiresAt: at + 60_000 });
  await log.append({ type: 'enlist', txId: 'tx-1pc', at, branch: { branchId: 1, gid: 'twopc_1pc_1', participant: 'ledger' } });
  await log.makeDurable();

  await cluster.crash();
  await cluster.startServer();
  await log.close().catch(() => undefined);

  const after = new PostgresDecisionLog({ connectionString: url, schema });
  await after.open();
  try {
    expect((await after.history('tx-1pc')).map((r) => r.type)).toEqual(['begin', 'enlist']);
  } finally {
    await after.close();
  }
});
