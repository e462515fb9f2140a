import { Pool } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { PostgresDecisionLog } from '../../coordinator/log/postgres/postgres-decision-log';
import { buildGid } from '../../participant-sdk/src/gid';
import type { BranchRef, Participant } from '../../coordinator/engine/ports/participant';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { PgCluster } from '../../harness/pg-cluster';

/**
 * Finding 3: a sweep finds a prepared branch of a transaction the log has no
 * record of (its registrations were lost, or are not visible to this
 * instance yet) and judges it as a lone branch. It used to roll that branch
 * back first, and only then ask the register. The transaction's owner, still
 * alive, then writes its commit decision in between: the sweep's
 * decide(abort) reads commit back, and one branch is rolled back under a
 * commit (a heuristic hazard; the other branch commits).
 *
 * A branch found prepared can only be committed under a commit decision, so
 * the register is asked first; it is rolled back only once abort has won.
 * Two coordinator instances share one PostgreSQL decision log here; the owner
 * writes its decision exactly in the window the old order opened (right after
 * the sweep's first ROLLBACK PREPARED, which no step of the sweep passes until
 * that decision is written), so the interleaving is deterministic.
 */

const PREFIX = 'ssw';
const LOG_DB = 'twopc_log';

/**
 * A participant whose rollbacks of the transaction's branches wait, once they
 * went through, for `afterRollback` (run once, by the first of them): the
 * owner's decision lands in exactly that window, whichever branch the sweep
 * reaches first.
 */
class RollbackWindow implements Participant {
  constructor(
    private readonly inner: PostgresParticipant,
    private readonly gids: string[],
    private readonly afterRollback: () => Promise<void>,
  ) {}
  get name(): string {
    return this.inner.name;
  }
  prepare(b: BranchRef) {
    return this.inner.prepare(b);
  }
  commit(b: BranchRef, o?: { onePhase?: boolean }) {
    return this.inner.commit(b, o);
  }
  async rollback(b: BranchRef): Promise<void> {
    await this.inner.rollback(b);
    if (this.gids.includes(b.gid)) await this.afterRollback();
  }
  listPrepared(prefix: string) {
    return this.inner.listPrepared(prefix);
  }
  status(b: BranchRef) {
    return this.inner.status(b);
  }
  close() {
    return Promise.resolve();
  }
}

describe('a sweep never rolls back a prepared branch before decide(abort) has won', () => {
  let cluster: PgCluster;
  const pools: Pool[] = [];
  const closers: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-sweep' });
    for (const db of ['ledger_a', 'ledger_b', LOG_DB]) await cluster.createDatabase(db);
    for (const db of ['ledger_a', 'ledger_b']) await cluster.withClient((c) => c.query('create table items (id text primary key)'), db);
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    for (const pool of pools) await pool.end();
    await cluster?.destroy();
  });

  const participant = async (db: string): Promise<PostgresParticipant> => {
    const pool = new Pool({ ...cluster.connectionConfig(db), max: 4 });
    pools.push(pool);
    const p = new PostgresParticipant({ name: db, pool });
    await p.start();
    closers.push(() => p.close());
    return p;
  };
  const log = () => new PostgresDecisionLog({ connectionString: cluster.connectionString(LOG_DB), schema: 'sweep', allowVolatile: true, onWarning: () => undefined });
  const config = parseEngineConfig({ gidPrefix: PREFIX, sweepIntervalMs: 0, sweepGraceMs: 0, maxTimeoutMs: 1_000, defaultTimeoutMs: 1_000, phaseTwoBaseDelayMs: 5, phaseTwoMaxDelayMs: 50, commitWaitMs: 5_000 });
  const rows = (db: string, id: string) => cluster.withClient(async (c) => (await c.query('select 1 from items where id = $1', [id])).rows.length, db);

  it('the owner writes commit right after the first rollback of the old order: every branch still ends the way the register says', async () => {
    // A transaction begun an hour ago (its id says so), two branches prepared by its owner, no record of it in the log.
    const txId = uuidv7({ msecs: Date.now() - 3_600_000 });
    const owned = { a: await participant('ledger_a'), b: await participant('ledger_b') };
    const branches = [
      { branchId: 1, gid: buildGid(PREFIX, txId, 1), participant: 'ledger_a' },
      { branchId: 2, gid: buildGid(PREFIX, txId, 2), participant: 'ledger_b' },
    ];
    for (const [i, p] of [owned.a, owned.b].entries()) {
      const ref = { ...branches[i], txId };
      const client = await p.openBranch(ref);
      await client.query('insert into items (id) values ($1)', [txId]);
      expect(await p.prepare(ref)).toMatchObject({ vote: 'yes' });
    }

    // The owner: alive, about to write its commit decision with both branches, then finish phase 2.
    const owner = new TransactionEngine({ log: log(), participants: new ParticipantRegistry([owned.a, owned.b]), config });
    await owner.start();
    closers.push(() => owner.stop());
    const ownerLog = log();
    await ownerLog.open();
    closers.push(() => ownerLog.close());
    let ownersDecision: string | undefined;

    // The sweeping instance.
    const seen = { a: await participant('ledger_a'), b: await participant('ledger_b') };
    let ownerDecides: Promise<void> | undefined;
    const afterRollback = () =>
      (ownerDecides ??= ownerLog.decide({ txId, at: Date.now(), outcome: 'commit', source: 'engine', branches }).then((d) => {
        ownersDecision = d.outcome;
      }));
    const gids = branches.map((b) => b.gid);
    const sweeper = new TransactionEngine({ log: log(), participants: new ParticipantRegistry([new RollbackWindow(seen.a, gids, afterRollback), new RollbackWindow(seen.b, gids, afterRollback)]), config });
    await sweeper.start();
    closers.push(() => sweeper.stop());

    const report = await sweeper.admin.sweep();
    expect(report.seen).toBe(2);
    // Whatever the owner wrote, the owner now finishes what the register holds.
    const deadline = Date.now() + 20_000;
    while (ownersDecision === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await owner.admin.retry(txId, 10_000);
    // Later passes end whatever the first one's phase 2 did not reach yet (each branch was found on its own).
    while ((await cluster.preparedGids(PREFIX)).length > 0 && Date.now() < deadline) {
      await sweeper.admin.sweep();
      await new Promise((r) => setTimeout(r, 20));
    }

    const snapshot = await ownerLog.get(txId);
    const outcome = snapshot?.decision?.outcome;
    const present = [await rows('ledger_a', txId), await rows('ledger_b', txId)];
    expect({ hazards: snapshot?.hazards.map((h) => h.detail) ?? [], prepared: await cluster.preparedGids(PREFIX) }).toEqual({ hazards: [], prepared: [] });
    // The sweep's abort won the register before anything was rolled back: the owner's commit lost.
    expect({ outcome, ownersDecision, present }).toEqual({ outcome: 'abort', ownersDecision: 'abort', present: [0, 0] });
  });
});
