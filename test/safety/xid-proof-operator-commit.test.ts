import { Pool } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { TwopcError } from '../../coordinator/engine/ports/protocol';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import type { BranchInfo } from '../../coordinator/engine/ports/types';
import type { BranchRef, Participant } from '../../coordinator/engine/ports/participant';
import { PostgresDecisionLog } from '../../coordinator/log/postgres/postgres-decision-log';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { buildGid } from '../../participant-sdk/src/gid';
import { PgCluster } from '../../harness/pg-cluster';
import { TestPool } from '../participants/postgres-fixture';

/**
 * Review F3 (commitProof xid): an operator's commit (`twopc resolve --commit`)
 * of an undecided transaction wrote its decision from the log's enlist
 * records, without the branches' xids. When the answer to a COMMIT PREPARED
 * was lost and another process finished the transaction, its retry found no
 * prepared transaction and no marker: a heuristic hazard on a branch that had
 * committed. The decision now carries the xid of each prepared branch.
 */

const PREFIX = 'sxo';

describe('an operator commit under commitProof xid', () => {
  let cluster: PgCluster;
  const pools: Pool[] = [];
  const closers: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-xid-operator-commit' });
    for (const db of ['ledger', 'twopc_log']) await cluster.createDatabase(db);
    await cluster.withClient((c) => c.query('create table items (id text primary key)'), 'ledger');
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    for (const pool of pools) await pool.end();
    const left = await cluster.preparedGids(PREFIX);
    for (const gid of left) await cluster.withClient((c) => c.query(`rollback prepared '${gid}'`), 'ledger');
    await cluster?.destroy();
  });

  function ledgerPool(): Pool {
    const pool = new Pool({ ...cluster.connectionConfig('ledger'), max: 4 });
    pools.push(pool);
    return pool;
  }

  async function ledger(pool: Pool | TestPool = ledgerPool()): Promise<PostgresParticipant> {
    const p = new PostgresParticipant({ name: 'ledger', pool });
    await p.start();
    closers.push(() => p.close());
    return p;
  }

  const logOn = () => new PostgresDecisionLog({ connectionString: cluster.connectionString('twopc_log'), schema: 'xid_operator', allowVolatile: true, onWarning: () => undefined });
  const engineOn = (participants: ParticipantRegistry, log: PostgresDecisionLog = logOn()) =>
    new TransactionEngine({ log, participants, config: parseEngineConfig({ gidPrefix: PREFIX, sweepIntervalMs: 0, sweepGraceMs: 0, commitWaitMs: 2_000 }) });

  it('its decision carries each prepared branch xid, so a retry by another process after a lost COMMIT PREPARED answer is acknowledged', async () => {
    const txId = uuidv7();
    const branches: BranchInfo[] = [1, 2].map((branchId) => ({ branchId, gid: buildGid(PREFIX, txId, branchId), participant: 'ledger' }));
    // A coordinator that died after both PREPAREs, before its decision: begin and enlist records only.
    const holder = await ledger();
    const votes: unknown[] = [];
    for (const b of branches) {
      const client = await holder.openBranch({ ...b, txId });
      await client.query('insert into items (id) values ($1)', [b.gid]);
      votes.push(await holder.prepare({ ...b, txId }));
    }
    const log = logOn();
    await log.open();
    const at = Date.now() - 60_000;
    await log.append({ type: 'begin', txId, at, expiresAt: at + 1_000 });
    for (const branch of branches) await log.append({ type: 'enlist', txId, at, branch });
    await log.close();

    // The operator's process: branch 1's COMMIT PREPARED commits but its answer is lost, and the
    // database is unreachable for it from then on.
    const testPool = new TestPool(ledgerPool());
    testPool.inject({ match: new RegExp(`^COMMIT PREPARED '${branches[0].gid}'`), mode: 'lose-answer' });
    const real = await ledger(testPool);
    let commits = 0;
    const operatorSide: Participant = {
      name: 'ledger',
      prepare: (b: BranchRef) => real.prepare(b),
      commit: async (b: BranchRef, o?: { onePhase?: boolean }) => {
        if (b.gid === branches[0].gid && commits++ > 0) throw new TwopcError('participant-unavailable', 'the database cannot be reached');
        return real.commit(b, o);
      },
      rollback: (b: BranchRef) => real.rollback(b),
      status: (b: BranchRef) => real.status(b),
      recordedState: (b: BranchRef) => real.recordedState(b),
      preparedXid: (b: BranchRef) => real.preparedXid(b),
      listPrepared: (prefix: string) => real.listPrepared(prefix),
      close: async () => undefined,
    };
    // Not started (as the offline CLI works): its start-up recovery would end the transaction first.
    const operatorLog = logOn();
    await operatorLog.open();
    const operator = engineOn(new ParticipantRegistry([operatorSide]), operatorLog);
    const resolved = await operator.admin.resolve(txId, 'commit');
    expect(resolved).toMatchObject({ decision: 'commit', completed: false, hazards: 0 });
    await operator.stop();
    const decided = logOn();
    await decided.open();
    expect((await decided.get(txId))?.decision?.branches).toEqual(branches.map((b, i) => ({ ...b, xid: (votes[i] as { xid: string }).xid })));
    await decided.close();

    // Another process finishes it: branch 1 is no longer prepared (42704), and its xid committed.
    const recoverer = engineOn(new ParticipantRegistry([await ledger()]));
    const report = (await recoverer.start()).recovery;
    // The complete record is not forced nor waited for by phase 2; stopping flushes it, so the
    // log read below sees it (read before, a loaded machine showed completed: false).
    await recoverer.stop();
    expect({ resumedCommit: report.resumedCommit, completed: report.completed, leftForLater: report.leftForLater }).toEqual({ resumedCommit: 1, completed: 1, leftForLater: 0 });
    const after = logOn();
    await after.open();
    const snapshot = await after.get(txId);
    await after.close();
    expect({ completed: snapshot?.completed, hazards: snapshot?.hazards }).toEqual({ completed: true, hazards: [] });
    const rows = await cluster.withClient((c) => c.query('select id from items order by id'), 'ledger');
    expect(rows.rows.map((r: { id: string }) => r.id)).toEqual(branches.map((b) => b.gid).sort());
  });
});
