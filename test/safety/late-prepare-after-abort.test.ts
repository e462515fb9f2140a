import { Pool } from 'pg';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { PostgresDecisionLog } from '../../coordinator/log/postgres/postgres-decision-log';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { PgCluster } from '../../harness/pg-cluster';

/**
 * Review L3 (a regression from 8741c0d): the sweep and orphan rollback
 * rolled back a prepared branch of a completed, aborted transaction only
 * when its decision did not list it, taking a listed one for "finished since
 * the listing was read". But a listed branch can prepare after phase 2: an
 * eager enlist is answered, the transaction aborts before the participant
 * opens the branch, phase 2's rollback finds nothing and `complete` is
 * written, and the participant's BEGIN and PREPARE come only then. That
 * branch stayed prepared, holding its locks, for good. Now every prepared
 * branch of a completed, aborted transaction is rolled back (alone: nothing
 * is written).
 */

const PREFIX = 'slp';

describe('a branch that prepared after its aborted transaction completed is rolled back', () => {
  let cluster: PgCluster;
  let pool: Pool;
  let engine: TransactionEngine;
  let log: PostgresDecisionLog;

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-late-prepare' });
    for (const db of ['ledger', 'twopc_log']) await cluster.createDatabase(db);
    await cluster.withClient((c) => c.query('create table items (id text primary key)'), 'ledger');
    pool = new Pool({ ...cluster.connectionConfig('ledger'), max: 4 });
    const participant = new PostgresParticipant({ name: 'ledger', pool });
    await participant.start();
    log = new PostgresDecisionLog({ connectionString: cluster.connectionString('twopc_log'), allowVolatile: true, onWarning: () => undefined });
    engine = new TransactionEngine({
      log,
      participants: new ParticipantRegistry([participant]),
      config: parseEngineConfig({ gidPrefix: PREFIX, sweepIntervalMs: 0, sweepGraceMs: 0, commitWaitMs: 5_000 }),
    });
    await engine.start();
  });

  afterAll(async () => {
    await engine?.stop();
    await pool?.end();
    await cluster?.destroy();
  });

  afterEach(async () => {
    const left = await cluster.preparedGids(PREFIX);
    for (const gid of left) await cluster.withClient((c) => c.query(`rollback prepared '${gid}'`), 'ledger');
    expect(left).toEqual([]);
  });

  /** An eager branch whose transaction aborted and completed before the participant prepared it; then it prepares. */
  async function lateBranch(): Promise<{ txId: string; gid: string }> {
    const tx = await engine.begin({ timeoutMs: 60_000 });
    const branch = await engine.enlist(tx.id, 'ledger', { prepare: 'eager' });
    await engine.abort(tx.id);
    const deadline = Date.now() + 10_000;
    while (!(await log.get(tx.id))?.completed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const snapshot = await log.get(tx.id);
    expect({ completed: snapshot?.completed, outcome: snapshot?.outcome, listed: snapshot?.decision?.branches.map((b) => b.gid) }).toEqual({ completed: true, outcome: 'abort', listed: [branch.gid] });
    // The participant's BEGIN and PREPARE, late.
    await cluster.withClient(async (c) => {
      await c.query('begin');
      await c.query('insert into items (id) values ($1)', [tx.id]);
      await c.query(`prepare transaction '${branch.gid}'`);
    }, 'ledger');
    return { txId: tx.id, gid: branch.gid };
  }

  it('by the sweep', async () => {
    await lateBranch();
    const report = await engine.admin.sweep();
    expect({ resolved: report.resolved, prepared: await cluster.preparedGids(PREFIX) }).toEqual({ resolved: 1, prepared: [] });
  });

  it('by an orphan rollback', async () => {
    const { txId, gid } = await lateBranch();
    const results = await engine.admin.rollbackOrphans();
    expect({ results, prepared: await cluster.preparedGids(PREFIX) }).toEqual({ results: [{ gid, txId, participant: 'ledger', outcome: 'rolled-back' }], prepared: [] });
  });
});
