import { Pool } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { isTwopcError } from '../../coordinator/engine/ports/protocol';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { PostgresDecisionLog } from '../../coordinator/log/postgres/postgres-decision-log';
import { buildGid } from '../../participant-sdk/src/gid';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { PgCluster } from '../../harness/pg-cluster';

/**
 * Review S2: an undecided transaction's only branch may have committed in
 * one phase (that leaves no decision record), so recovery's rule asks its
 * participant first — but only when the participant was configured in this
 * process and this process had `onePhaseCommit` on. Otherwise it fell
 * through to decide(abort): a recovery, sweep or operator's resolve in a
 * process that cannot reach that participant (a mixed takeover, the offline
 * CLI with an incomplete config) recorded abort for a branch that had
 * committed. Now an only branch whose participant cannot be asked leaves the
 * transaction undecided (recovery leaves it for later, resolve refuses),
 * whatever this process's own `onePhaseCommit` is; with no branch at all,
 * abort is decided at once (nothing can have committed).
 *
 * What a coordinator that died between a one-phase COMMIT and its
 * `complete` leaves behind: the begin and enlist records in a PostgreSQL log,
 * the branch committed in its ledger.
 */

const PREFIX = 'slb';
const LOG_DB = 'twopc_log';

describe('an undecided only branch is never decided abort by a process that cannot ask its participant', () => {
  let cluster: PgCluster;
  let pool: Pool;
  let ledger: PostgresParticipant;
  const closers: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-lone' });
    for (const db of ['ledger', LOG_DB]) await cluster.createDatabase(db);
    await cluster.withClient((c) => c.query('create table items (id text primary key)'), 'ledger');
    pool = new Pool({ ...cluster.connectionConfig('ledger'), max: 4 });
    ledger = new PostgresParticipant({ name: 'ledger', pool });
    await ledger.start();
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await ledger?.close();
    await pool?.end();
    await cluster?.destroy();
  });

  const log = (schema: string) => new PostgresDecisionLog({ connectionString: cluster.connectionString(LOG_DB), schema, allowVolatile: true, onWarning: () => undefined });
  const rows = (id: string) => cluster.withClient(async (c) => (await c.query('select 1 from items where id = $1', [id])).rows.length, 'ledger');

  /** A coordinator's records of a transaction with `branches` lone branches, expired; each branch committed in one phase when `commit`. */
  async function leftBehind(schema: string, branches: 0 | 1, commit: boolean): Promise<string> {
    const writer = log(schema);
    await writer.open();
    const txId = uuidv7();
    const at = Date.now() - 60_000;
    await writer.append({ type: 'begin', txId, at, expiresAt: at + 1_000 });
    if (branches === 1) {
      const branch = { branchId: 1, gid: buildGid(PREFIX, txId, 1), participant: 'ledger' };
      await writer.append({ type: 'enlist', txId, at, branch });
      await writer.makeDurable();
      if (commit) {
        const client = await ledger.openBranch({ ...branch, txId });
        await client.query('insert into items (id) values ($1)', [txId]);
        await ledger.commit({ ...branch, txId }, { onePhase: true });
      }
    }
    await writer.close();
    return txId;
  }

  /** A coordinator on `schema` that knows `participants` and has onePhaseCommit as given. */
  async function coordinator(schema: string, participants: PostgresParticipant[], onePhaseCommit = true) {
    const l = log(schema);
    const engine = new TransactionEngine({
      log: l,
      participants: new ParticipantRegistry(participants),
      config: parseEngineConfig({ gidPrefix: PREFIX, sweepIntervalMs: 0, sweepGraceMs: 0, commitWaitMs: 5_000, onePhaseCommit }),
    });
    await engine.start();
    closers.push(() => engine.stop());
    return { engine, log: l };
  }

  it("recovery in a process without the branch's participant leaves it undecided; one that has it records commit", async () => {
    const txId = await leftBehind('recover', 1, true);
    // start() runs recovery: nothing may be decided here.
    const { engine, log: l } = await coordinator('recover', []);
    const again = await engine.admin.recover({ waitMs: 1_000 });
    expect({ again: { decidedAbort: again.decidedAbort, leftForLater: again.leftForLater }, decision: (await l.get(txId))?.decision, present: await rows(txId) }).toEqual({
      again: { decidedAbort: 0, leftForLater: 1 },
      decision: undefined,
      present: 1,
    });
    await engine.stop();

    const { log: reaching } = await coordinator('recover', [ledger]);
    expect((await reaching.get(txId))?.decision?.outcome).toBe('commit');
  });

  it("an operator's resolve --abort without the branch's participant is refused and records nothing", async () => {
    const txId = await leftBehind('resolve', 1, true);
    const { engine, log: l } = await coordinator('resolve', []);
    const refusal = await engine.admin.resolve(txId, 'abort').then(
      () => 'resolved',
      (e: unknown) => (isTwopcError(e) ? e.code : String(e)),
    );
    expect({ refusal, decision: (await l.get(txId))?.decision, present: await rows(txId) }).toEqual({ refusal: 'participant-unavailable', decision: undefined, present: 1 });
  });

  it('a process with onePhaseCommit off still asks the only branch: a one-phase commit done elsewhere is recorded commit', async () => {
    const txId = await leftBehind('one_phase_off', 1, true);
    const { log: l } = await coordinator('one_phase_off', [ledger], false);
    expect({ decision: (await l.get(txId))?.decision?.outcome, present: await rows(txId) }).toEqual({ decision: 'commit', present: 1 });
  });

  it('a transaction with no branch is still decided abort at once, with or without participants', async () => {
    const txId = await leftBehind('no_branch', 0, false);
    const { log: l } = await coordinator('no_branch', []);
    expect((await l.get(txId))?.decision?.outcome).toBe('abort');
  });
});
