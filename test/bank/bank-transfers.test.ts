import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { Coordinator } from '../../coordinator/in-process/coordinator';
import { TransactionAbortedError } from '../../coordinator/engine/ports/protocol';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { COMMIT_PROOFS } from '../../participant-sdk/src/postgres';
import { PgCluster } from '../../harness/pg-cluster';
import { checkBank, randomTransfer, seededRandom, setupBank, transfer, Transfer } from '../../harness/bank';

const ACCOUNTS = 50;
const TRANSFERS = 1_200;
const CONCURRENCY = 16;

describe.each(COMMIT_PROOFS)('bank transfers across two PostgreSQL clusters, in process (commitProof %s)', (commitProof) => {
  let a: PgCluster;
  let b: PgCluster;
  let pools: { a: Pool; b: Pool };
  let admin: { a: Pool; b: Pool };
  let participants: PostgresParticipant[];
  let coordinator: Coordinator;
  let logDir: string;

  beforeAll(async () => {
    [a, b] = await Promise.all([PgCluster.start({ name: 'bank-a' }), PgCluster.start({ name: 'bank-b' })]);
    await Promise.all([a.createDatabase('bank'), b.createDatabase('bank')]);
    pools = { a: new Pool({ ...a.connectionConfig('bank'), max: 20 }), b: new Pool({ ...b.connectionConfig('bank'), max: 20 }) };
    admin = { a: new Pool({ ...a.connectionConfig('bank'), max: 2 }), b: new Pool({ ...b.connectionConfig('bank'), max: 2 }) };
    for (const pool of [pools.a, pools.b]) pool.on('error', () => undefined);
    await Promise.all([setupBank(admin.a, ACCOUNTS), setupBank(admin.b, ACCOUNTS)]);
    participants = [new PostgresParticipant({ name: 'ledger_a', pool: pools.a, commitProof }), new PostgresParticipant({ name: 'ledger_b', pool: pools.b, commitProof })];
    await Promise.all(participants.map((p) => p.start()));
    logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-bank-'));
    coordinator = await Coordinator.start({ log: new FileDecisionLog({ dir: logDir }), databases: participants, engine: { sweepIntervalMs: 0 } });
  });

  afterAll(async () => {
    await coordinator?.close();
    await Promise.all((participants ?? []).map((p) => p.close()));
    await Promise.all([pools?.a.end(), pools?.b.end(), admin?.a.end(), admin?.b.end()]);
    await Promise.all([a?.destroy(), b?.destroy()]);
    if (logDir) fs.rmSync(logDir, { recursive: true, force: true });
  });

  afterEach(async () => {
    await a.assertNoPrepared('twopc');
    await b.assertNoPrepared('twopc');
  });

  it(`${TRANSFERS} concurrent transfers, some failing, conserve money and never half-apply`, async () => {
    const random = seededRandom(42);
    const transfers: Transfer[] = Array.from({ length: TRANSFERS }, (_, i) =>
      randomTransfer(random, `t${i}`, ACCOUNTS, { overdraft: 0.04, 'swallowed-error': 0.04, 'kill-connection': 0.03 }),
    );
    const committed: string[] = [];
    const aborted: Array<{ t: Transfer; error: unknown }> = [];
    const killBackend = async (db: string, pid: number) => {
      await (db === 'ledger_a' ? admin.a : admin.b).query('select pg_terminate_backend($1)', [pid]);
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < transfers.length) {
          const t = transfers[next++];
          try {
            await transfer(coordinator, t, { killBackend });
            committed.push(t.id);
          } catch (error) {
            aborted.push({ t, error });
          }
        }
      }),
    );

    // Each sabotage fails the way it should, and only sabotaged transfers fail.
    const bySabotage = (kind: string) => transfers.filter((t) => t.sabotage === kind).length;
    expect(aborted.map((x) => x.t.sabotage).sort()).toEqual(transfers.filter((t) => t.sabotage !== 'none').map((t) => t.sabotage).sort());
    for (const { t, error } of aborted) {
      if (t.sabotage === 'overdraft') expect(error).toMatchObject({ code: '23514' });
      else {
        expect(error).toBeInstanceOf(TransactionAbortedError);
        expect((error as TransactionAbortedError).reason).toMatchObject({ cause: 'vote-no', participant: t.from.db });
      }
    }
    expect(bySabotage('kill-connection')).toBeGreaterThan(10);
    expect(bySabotage('swallowed-error')).toBeGreaterThan(10);

    const check = await checkBank(admin, ACCOUNTS, { committed, aborted: aborted.map((x) => x.t.id) });
    expect(check).toMatchObject({ halfApplied: [], lostCommits: [], visibleAborts: [], total: check.expectedTotal, applied: committed.length });
    expect(committed.length).toBeGreaterThan(TRANSFERS * 0.8);
  });
});
