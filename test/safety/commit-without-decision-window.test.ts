import { Pool } from 'pg';
import { isTwopcError } from '../../coordinator/engine/ports/protocol';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import type { AppendableRecord } from '../../coordinator/engine/ports/decision-log';
import { PostgresDecisionLog } from '../../coordinator/log/postgres/postgres-decision-log';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { PgCluster } from '../../harness/pg-cluster';
import { Gate, interceptedLog } from './intercepted-log';

/**
 * Review C1: a commit that needs no decision record — no branch, every
 * branch read-only, or one branch committed in one phase — answered the
 * client "committed" and removed the transaction from memory before its
 * `complete` record (the proof that it committed) was stored. In that window
 * the log shows it undecided and unfinished, and a full recovery pass (or a
 * client's abort) judged it by recovery's rule: abort for one with no branch
 * or read-only ones, and for a lone read-only branch (its participant knows
 * nothing of it). The register then said aborted for a transaction reported
 * committed. Phase 2 has a `completing` guard for this; this path had none.
 * Now the transaction stays in memory, completed, until its `complete` is stored.
 *
 * The `complete` append is held before it reaches the store (a PostgreSQL
 * log) while a recovery pass and an abort run.
 */

const PREFIX = 'scw';

describe('a commit without a decision record stays visible until its complete is stored', () => {
  let cluster: PgCluster;
  let pool: Pool;
  let participant: PostgresParticipant;
  let engine: TransactionEngine;
  let inner: PostgresDecisionLog;
  let hold: Gate | undefined;

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-complete-window' });
    for (const db of ['ledger', 'twopc_log']) await cluster.createDatabase(db);
    await cluster.withClient((c) => c.query('create table items (id text primary key)'), 'ledger');
    pool = new Pool({ ...cluster.connectionConfig('ledger'), max: 6 });
    participant = new PostgresParticipant({ name: 'ledger', pool });
    await participant.start();
    inner = new PostgresDecisionLog({ connectionString: cluster.connectionString('twopc_log'), allowVolatile: true, onWarning: () => undefined });
    const log = interceptedLog(inner, {
      append: async (next, record: AppendableRecord) => {
        if (record.type === 'complete') await hold?.pass();
        return next(record);
      },
    });
    engine = new TransactionEngine({
      log,
      participants: new ParticipantRegistry([participant]),
      config: parseEngineConfig({ gidPrefix: PREFIX, sweepIntervalMs: 0, sweepGraceMs: 0, commitWaitMs: 5_000 }),
    });
    await engine.start();
  });

  afterAll(async () => {
    hold?.open();
    await engine?.stop();
    await participant?.close();
    await pool?.end();
    await cluster?.destroy();
  });

  /** Commits a transaction with `branches` read-only branches while its `complete` is held; runs `during`, then lets it through. */
  async function committedWithCompleteHeld(branches: number, during: (txId: string) => Promise<unknown>) {
    hold = new Gate();
    const tx = await engine.begin({ timeoutMs: 60_000 });
    for (let i = 0; i < branches; i += 1) {
      const branch = await engine.enlist(tx.id, 'ledger');
      const client = await participant.openBranch({ ...branch, txId: tx.id });
      await client.query('select count(*) from items');
    }
    const answer = (await engine.commit(tx.id)).state;
    await hold.reached;
    // Its begin (not waited for by begin) is in the store by now; the transaction shows undecided there.
    const stored = Date.now() + 10_000;
    while ((await inner.get(tx.id)) === undefined && Date.now() < stored) await new Promise((r) => setTimeout(r, 20));
    const seen = await during(tx.id);
    hold.open();
    const deadline = Date.now() + 10_000;
    while (!(await inner.get(tx.id))?.completed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const snapshot = await inner.get(tx.id);
    return { answer, seen, outcome: snapshot?.outcome, decision: snapshot?.decision?.outcome };
  }

  const recovery = async () => {
    const report = await engine.admin.recover({ waitMs: 1_000 });
    return { decidedAbort: report.decidedAbort, decidedCommit: report.decidedCommit };
  };

  it.each([
    ['no branch', 0],
    ['two read-only branches', 2],
    ['one read-only branch, committed in one phase', 1],
  ])('%s: a recovery pass in the window decides nothing; the log proves the commit', async (_name, branches) => {
    expect(await committedWithCompleteHeld(branches, recovery)).toEqual({
      answer: 'committed',
      seen: { decidedAbort: 0, decidedCommit: 0 },
      outcome: 'commit',
      decision: undefined,
    });
  });

  it("a client's abort in the window is refused: the transaction committed", async () => {
    const abort = (txId: string) =>
      engine.abort(txId).then(
        () => 'aborted',
        (e: unknown) => (isTwopcError(e) ? e.code : String(e)),
      );
    const status = async (txId: string) => ({ abort: await abort(txId), status: (await engine.status(txId))?.decision });
    expect(await committedWithCompleteHeld(2, status)).toEqual({ answer: 'committed', seen: { abort: 'state-conflict', status: 'commit' }, outcome: 'commit', decision: undefined });
  });
});
