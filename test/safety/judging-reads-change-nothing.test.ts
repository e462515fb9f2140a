import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Pool } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { TwopcError, isTwopcError } from '../../coordinator/engine/ports/protocol';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import type { BranchInfo } from '../../coordinator/engine/ports/types';
import { PostgresDecisionLog } from '../../coordinator/log/postgres/postgres-decision-log';
import { buildGid } from '../../participant-sdk/src/gid';
import { HttpParticipants } from '../../coordinator/participants/http/http-participants';
import { HTTP_PARTICIPANT_DEFAULTS } from '../../coordinator/participants/http/http-participant-options';
import type { BranchRef, Participant } from '../../coordinator/engine/ports/participant';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { createParticipant, type TwopcParticipant } from '../../participant-sdk/src';
import { PgCluster } from '../../harness/pg-cluster';

/**
 * Review C2 and C3: reads that judge a transaction must not change it.
 *
 * C2: recovery's rule for an undecided transaction's only branch read its
 * state, and unless it was prepared rolled it back before reading again —
 * also when the first read said committed. That rollback met a committed
 * branch (a spurious heuristic hazard), and one that failed otherwise left a
 * transaction proven committed undecided. A first read of committed now
 * records the commit at once.
 *
 * C3: an operator's commit of an undecided transaction checks that every
 * branch is prepared, with `status` — which ends a branch another process
 * holds. A commit refused at one branch had already rolled back another.
 * The check now reads without side effects (`recordedState`; over HTTP,
 * `GET /branches/:gid?observe=1`).
 */

const PREFIX = 'sjr';
const SECRET = 'a-test-secret-of-some-length';

describe('reads that judge a transaction change nothing', () => {
  let cluster: PgCluster;
  const pools: Pool[] = [];
  const closers: Array<() => Promise<void>> = [];
  let schemas = 0;

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-judging-reads' });
    for (const db of ['ledger', 'twopc_log']) await cluster.createDatabase(db);
    await cluster.withClient((c) => c.query('create table items (id text primary key)'), 'ledger');
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    for (const pool of pools) await pool.end();
    await cluster?.destroy();
  });

  afterEach(async () => {
    const left = await cluster.preparedGids(PREFIX);
    for (const gid of left) await cluster.withClient((c) => c.query(`rollback prepared '${gid}'`), 'ledger');
  });

  /** A participant on `ledger` with a pool of its own: another process's, as far as the database can tell. */
  async function ledger(): Promise<PostgresParticipant> {
    const pool = new Pool({ ...cluster.connectionConfig('ledger'), max: 4 });
    pools.push(pool);
    const p = new PostgresParticipant({ name: 'ledger', pool });
    await p.start();
    closers.push(() => p.close());
    return p;
  }

  const logOn = (schema: string) => new PostgresDecisionLog({ connectionString: cluster.connectionString('twopc_log'), schema, allowVolatile: true, onWarning: () => undefined });

  /** What a coordinator that died leaves: the begin and enlist records of an undecided, expired transaction. Returns the log's schema. */
  async function leftBehind(txId: string, branches: BranchInfo[]): Promise<string> {
    schemas += 1;
    const schema = `judging_${schemas}`;
    const log = logOn(schema);
    await log.open();
    const at = Date.now() - 60_000;
    await log.append({ type: 'begin', txId, at, expiresAt: at + 1_000 });
    for (const branch of branches) await log.append({ type: 'enlist', txId, at, branch });
    await log.close();
    return schema;
  }

  /** The log of `schema`, opened (an engine that is not started works on it as the offline CLI does). */
  async function opened(schema: string): Promise<PostgresDecisionLog> {
    const log = logOn(schema);
    await log.open();
    closers.push(() => log.close());
    return log;
  }

  const engineOn = (log: PostgresDecisionLog, participants: ParticipantRegistry) =>
    new TransactionEngine({ log, participants, config: parseEngineConfig({ gidPrefix: PREFIX, sweepIntervalMs: 0, sweepGraceMs: 0, commitWaitMs: 5_000 }) });

  it('C2: an only branch found committed is recorded committed at once, never rolled back first', async () => {
    const txId = uuidv7();
    const branch = { branchId: 1, gid: buildGid(PREFIX, txId, 1), participant: 'ledger' };
    const committer = await ledger();
    const client = await committer.openBranch({ ...branch, txId });
    await client.query('insert into items (id) values ($1)', [txId]);
    await committer.commit({ ...branch, txId }, { onePhase: true });
    const schema = await leftBehind(txId, [branch]);

    // Its rollbacks fail (the database is briefly unreachable for them, say) and are counted.
    const real = await ledger();
    const rollbacks: string[] = [];
    const recoverer: Participant = {
      name: 'ledger',
      prepare: (b: BranchRef) => real.prepare(b),
      commit: (b: BranchRef, o?: { onePhase?: boolean }) => real.commit(b, o),
      status: (b: BranchRef) => real.status(b),
      rollback: async (b: BranchRef) => {
        rollbacks.push(b.gid);
        throw new TwopcError('participant-unavailable', 'cannot reach the database for a rollback');
      },
      close: async () => undefined,
    };
    const engine = engineOn(logOn(schema), new ParticipantRegistry([recoverer]));
    const report = (await engine.start()).recovery;
    closers.push(() => engine.stop());
    expect({ decidedCommit: report.decidedCommit, leftForLater: report.leftForLater, rollbacks, decision: (await (await opened(schema)).get(txId))?.decision?.outcome }).toEqual({
      decidedCommit: 1,
      leftForLater: 0,
      rollbacks: [],
      decision: 'commit',
    });
  });

  /** Two branches: the first still held (not prepared) by another process, the second prepared. */
  async function heldAndPrepared(txId: string, url?: string) {
    const holder = await ledger();
    const branches = [1, 2].map((branchId) => ({ branchId, gid: buildGid(PREFIX, txId, branchId), participant: 'ledger', ...(url ? { url } : {}) }));
    const held = await holder.openBranch({ ...branches[0], txId });
    await held.query('insert into items (id) values ($1)', [`${txId}-1`]);
    const other = await holder.openBranch({ ...branches[1], txId });
    await other.query('insert into items (id) values ($1)', [`${txId}-2`]);
    expect(await holder.prepare({ ...branches[1], txId })).toMatchObject({ vote: 'yes' });
    return { holder, branches };
  }

  async function refusedCommitLeavesHeldBranch(engine: TransactionEngine, txId: string, holder: PostgresParticipant, first: BranchInfo) {
    const refusal = await engine.admin.resolve(txId, 'commit').then(
      () => 'committed',
      (e: unknown) => (isTwopcError(e) ? e.code : String(e)),
    );
    // The holder goes on with its branch: it was not ended by the check.
    const vote = await holder.prepare({ ...first, txId }).catch((e: Error) => ({ vote: `threw: ${e.message}` }));
    return { refusal, vote };
  }

  it('C3: a refused resolve --commit leaves a branch held by another process alone (direct database)', async () => {
    const txId = uuidv7();
    const { holder, branches } = await heldAndPrepared(txId);
    // Not started: its start-up recovery would end the transaction before the operator gets to it.
    const engine = engineOn(await opened(await leftBehind(txId, branches)), new ParticipantRegistry([await ledger()]));
    expect(await refusedCommitLeavesHeldBranch(engine, txId, holder, branches[0])).toEqual({ refusal: 'state-conflict', vote: expect.objectContaining({ vote: 'yes' }) });
  });

  it('C3: the same through a participant service (GET /branches/:gid?observe=1)', async () => {
    const pool = new Pool({ ...cluster.connectionConfig('ledger'), max: 4 });
    pools.push(pool);
    const router = express();
    const server = await new Promise<Server>((resolve) => {
      const s = router.listen(0, '127.0.0.1', () => resolve(s));
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/twopc`;
    const service: TwopcParticipant = createParticipant({
      name: 'ledger',
      pool,
      coordinatorUrl: 'http://127.0.0.1:9',
      apiToken: 'test-api-token',
      secret: SECRET,
      publicUrl: base,
      gidPrefix: PREFIX,
      sweepIntervalMs: 0,
      pruneIntervalMs: 0,
    });
    router.use('/twopc', service.router());
    await service.start();
    closers.push(async () => {
      await service.close();
      await new Promise((r) => server.close(r));
    });
    const http = new HttpParticipants({ ...HTTP_PARTICIPANT_DEFAULTS, secret: SECRET });
    closers.push(() => http.close());

    const txId = uuidv7();
    // Held by another replica of the service (another process, as far as the database can tell).
    const { holder, branches } = await heldAndPrepared(txId, base);
    const engine = engineOn(await opened(await leftBehind(txId, branches)), new ParticipantRegistry([], http.forUrl));
    expect(await refusedCommitLeavesHeldBranch(engine, txId, holder, branches[0])).toEqual({ refusal: 'state-conflict', vote: expect.objectContaining({ vote: 'yes' }) });
  });
});
