import { Pool } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { Membership } from '../../coordinator/cluster/membership';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { silentLogger } from '../../coordinator/engine/ports/logger';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import type { AppendableRecord } from '../../coordinator/engine/ports/decision-log';
import { PostgresDecisionLog } from '../../coordinator/log/postgres/postgres-decision-log';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { PgCluster } from '../../harness/pg-cluster';
import { Gate, interceptedLog } from './intercepted-log';

/**
 * Review S1: on a shared log, `begin` stored its begin record and waited for
 * it, and only then put the transaction in memory. A full recovery pass in
 * that window (every takeover starts one, and so do `/v1/admin/recover` and
 * `twopc recover`) found the record unfinished, not live here, owned by this
 * instance, with no branch: it decided abort and completed it. `begin` then
 * handed the id out, the client enlisted one branch and committed it in one
 * phase — which never reads the register — so the participant committed and
 * the client was told committed while the register said aborted.
 *
 * The transaction is in memory before its begin record can be seen; and, as
 * a safeguard, a full recovery leaves alone an undecided, unexpired
 * transaction begun under this instance's current lease.
 *
 * One coordinator on a PostgreSQL log with a real lease; the begin's append
 * is held (after the store has it) until the recovery pass is over.
 */

const PREFIX = 'sbw';
const LOG_DB = 'twopc_log';

describe("a full recovery never decides a transaction this instance is beginning", () => {
  let cluster: PgCluster;
  let pool: Pool;
  let participant: PostgresParticipant;
  const closers: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-begin' });
    for (const db of ['ledger', LOG_DB]) await cluster.createDatabase(db);
    await cluster.withClient((c) => c.query('create table items (id text primary key)'), 'ledger');
    pool = new Pool({ ...cluster.connectionConfig('ledger'), max: 4 });
    participant = new PostgresParticipant({ name: 'ledger', pool });
    await participant.start();
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await participant?.close();
    await pool?.end();
    await cluster?.destroy();
  });

  const config = parseEngineConfig({ gidPrefix: PREFIX, sweepIntervalMs: 0, sweepGraceMs: 0, phaseTwoBaseDelayMs: 5, phaseTwoMaxDelayMs: 50, commitWaitMs: 5_000 });
  const rows = (id: string) => cluster.withClient(async (c) => (await c.query('select 1 from items where id = $1', [id])).rows.length, 'ledger');

  /** An engine on its own schema of the shared log, with a lease; `holdBegin` pauses the begin's append once stored. */
  async function coordinator(schema: string, holdBegin?: Gate, begun?: (txId: string) => void) {
    const inner = new PostgresDecisionLog({ connectionString: cluster.connectionString(LOG_DB), schema, allowVolatile: true, onWarning: () => undefined });
    const log = interceptedLog(inner, {
      append: async (next, record: AppendableRecord) => {
        await next(record);
        if (record.type !== 'begin') return;
        begun?.(record.txId);
        await holdBegin?.pass();
      },
    });
    const membership = new Membership({ leases: inner.leases, leaseMs: 30_000, logger: silentLogger, identity: () => ({ name: `coord-${schema}`, url: 'http://127.0.0.1:9' }) });
    const engine = new TransactionEngine({ log, participants: new ParticipantRegistry([participant]), config, ownership: membership });
    await engine.start();
    closers.push(() => engine.stop());
    return { engine, inner, membership };
  }

  async function completed(log: PostgresDecisionLog, txId: string) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const snapshot = await log.get(txId);
      if (snapshot?.completed || Date.now() > deadline) return snapshot;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('a recovery pass while begin waits for its stored record: the one-phase commit that follows and the register agree', async () => {
    const holdBegin = new Gate();
    let stored: string | undefined;
    const { engine, inner } = await coordinator('window', holdBegin, (txId) => (stored = txId));

    const beginning = engine.begin({ timeoutMs: 60_000 });
    await holdBegin.reached;
    // The begin record is in the store; its answer has not reached begin() yet. The transaction runs here already.
    const runsHere = engine.runsHere(stored!);
    const report = await engine.admin.recover({ waitMs: 2_000 });
    holdBegin.open();
    const tx = await beginning;

    const branch = await engine.enlist(tx.id, 'ledger');
    const client = await participant.openBranch({ ...branch, txId: tx.id });
    await client.query('insert into items (id) values ($1)', [tx.id]);
    const answer = await engine.commit(tx.id).then(
      (r) => r.state,
      (e: Error) => e.message,
    );

    const snapshot = await completed(inner, tx.id);
    const present = await rows(tx.id);
    // Whatever the client was told, the participant did, and the register says: one and the same.
    expect({ runsHere, decidedAbort: report.decidedAbort, answer, present, outcome: snapshot?.outcome, decision: snapshot?.decision?.outcome }).toEqual({
      runsHere: true,
      decidedAbort: 0,
      answer: 'committed',
      present: 1,
      outcome: 'commit',
      decision: undefined,
    });
  });

  it('a full recovery leaves an unexpired, undecided transaction of its own current lease alone, and ends it once expired', async () => {
    const { engine, inner, membership } = await coordinator('safeguard');
    // What the window above leaves: a begin record under this process's lease that it has no memory of.
    const txId = uuidv7();
    const expiresAt = Date.now() + 1_500;
    await inner.append({ type: 'begin', txId, at: Date.now(), expiresAt, owner: membership.token! });

    const early = await engine.admin.recover({ waitMs: 1_000 });
    expect({ decidedAbort: early.decidedAbort, decision: (await inner.get(txId))?.decision }).toEqual({ decidedAbort: 0, decision: undefined });

    while (Date.now() <= expiresAt) await new Promise((r) => setTimeout(r, 50));
    const late = await engine.admin.recover({ waitMs: 2_000 });
    expect({ decidedAbort: late.decidedAbort, decision: (await inner.get(txId))?.decision?.outcome }).toEqual({ decidedAbort: 1, decision: 'abort' });
  });
});
