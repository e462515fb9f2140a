import path from 'node:path';
import type { PoolClient, QueryResult } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { buildGid } from '../../participant-sdk/src/gid';
import { PostgresParticipant } from '../../participant-sdk/src/postgres';
import { ClusterHistories } from '../../participant-sdk/src/postgres/cluster-history';
import { commitOnePhase, prepareBranch, prepareBranchXid } from '../../participant-sdk/src/postgres/postgres-sql';
import { CLUSTER_HISTORY } from '../../participant-sdk/src/postgres/xid-proof-sql';
import type { BenchMode } from '../bench-mode';
import { GroupCommitFile } from '../group-commit-file';
import { UPDATE_BALANCE } from '../transfer-plan';

/** Knobs that make the floor do one more thing the engine does, to price it (what-if modes). */
export interface RawVariant {
  /** BEGIN each database just before its UPDATE (as a lazily opened branch does) instead of both at once up front. */
  serialBegin?: boolean;
  /** PREPARE in the engine adapter's round trip: in-block guard + marker row + PREPARE. */
  marker?: boolean;
  /**
   * PREPARE in the adapter's round trip under commitProof xid: the xid and its cluster history + PREPARE;
   * with the in-block guard unless `noGuard`, the history read in full (CLUSTER_HISTORY, as before the
   * per-connection cache) unless `cachedHistory`.
   */
  xid?: boolean;
  /** With `xid`: the cluster history as the adapter reads it now, the system identifier once per connection. */
  cachedHistory?: boolean;
  /** With `xid`: no in-block guard (what the adapter sends when the connection's status vouches for the block). */
  noGuard?: boolean;
  /** PREPARE after the adapter's in-block guard only (no xid, no marker). */
  guard?: boolean;
  /** PREPARE with the guard and the xid, without the cluster history read. */
  xidOnly?: boolean;
  /** BEGIN with the adapter's SET LOCAL application_name tag. */
  tag?: boolean;
  /**
   * Last-resource commit (what-if): ledger_a is prepared while the registration line is made durable,
   * then ledger_b commits in one phase with the adapter's marker row (its COMMIT is the decision),
   * then ledger_a's COMMIT PREPARED. One PREPARE, one COMMIT PREPARED and no decision line after the votes.
   */
  lastResource?: boolean;
}

type Prepare = (client: PoolClient, gid: string, txId: string) => Promise<void>;

// GIDs here are bench-made (prefix + counter, or buildGid), never input, so inlining them is safe.
const plainPrepare: Prepare = async (client, gid) => {
  const result = await client.query(`prepare transaction '${gid}'`);
  // In a failed transaction block PostgreSQL answers ROLLBACK, not an error.
  if (result.command !== 'PREPARE') throw new Error(`branch ${gid} voted no: PREPARE answered ${result.command}`);
};

const markerPrepare: Prepare = async (client, gid, txId) => {
  const results = (await client.query(prepareBranch('public', gid, txId))) as unknown as QueryResult[];
  if (results[3]?.command !== 'PREPARE') throw new Error(`branch ${gid} voted no: PREPARE answered ${results[3]?.command}`);
};

function xidPrepare(variant: RawVariant): Prepare {
  const histories = new ClusterHistories();
  return async (client, gid) => {
    const history = variant.cachedHistory ? histories.columns(client) : `${CLUSTER_HISTORY} AS cluster`;
    const [proof, prepare] = ((await client.query(prepareBranchXid(gid, history, !variant.noGuard))) as unknown as QueryResult[]).slice(-2);
    if (prepare?.command !== 'PREPARE') throw new Error(`branch ${gid} voted no: PREPARE answered ${prepare?.command}`);
    if (variant.cachedHistory && histories.fromRow(client, proof?.rows[0]) === undefined) throw new Error(`branch ${gid}: no cluster history`);
  };
}

const guardPrepare: Prepare = async (client, gid) => {
  const results = (await client.query(`SAVEPOINT twopc_in_block; RELEASE SAVEPOINT twopc_in_block; PREPARE TRANSACTION '${gid}'`)) as unknown as QueryResult[];
  if (results[2]?.command !== 'PREPARE') throw new Error(`branch ${gid} voted no: PREPARE answered ${results[2]?.command}`);
};

const xidOnlyPrepare: Prepare = async (client, gid) => {
  const results = (await client.query(`SAVEPOINT twopc_in_block; RELEASE SAVEPOINT twopc_in_block; SELECT pg_current_xact_id_if_assigned()::text AS xid; PREPARE TRANSACTION '${gid}'`)) as unknown as QueryResult[];
  if (results[3]?.command !== 'PREPARE') throw new Error(`branch ${gid} voted no: PREPARE answered ${results[3]?.command}`);
};

/** Best effort after a failure before the decision: presumed abort, so roll every branch back. */
async function rollBack(clients: PoolClient[], gid: string): Promise<void> {
  await Promise.all(
    clients.map(async (client) => {
      await client.query('rollback').catch(() => undefined);
      // 42704 (never prepared) is fine here.
      await client.query(`rollback prepared '${gid}'`).catch(() => undefined);
    }),
  );
}

/**
 * The floor: hand-written two-phase commit and nothing else. Phase 1 in
 * parallel across the two databases (the UPDATEs themselves run ledger_a then
 * ledger_b: PostgreSQL cannot see a deadlock spanning two databases), one
 * durable decision line in a group-committed file, phase 2 in parallel. No
 * begin/enlist records, no marker rows, no retries.
 */
export function rawTwoPhaseMode(name = 'raw', variant: RawVariant = {}): BenchMode {
  const prepare = variant.marker ? markerPrepare : variant.xid ? xidPrepare(variant) : variant.xidOnly ? xidOnlyPrepare : variant.guard ? guardPrepare : plainPrepare;
  return {
    name,
    summary: `hand-written 2PC: BEGIN/UPDATE/PREPARE on both, decision line fdatasync'ed with group commit, COMMIT PREPARED on both${variant.serialBegin ? '; BEGIN per database just before its UPDATE' : ''}${variant.marker ? '; PREPARE with the adapter\'s guard + marker row' : ''}${variant.xid ? `; PREPARE with ${variant.noGuard ? '' : 'the in-block guard + '}the xid + ${variant.cachedHistory ? 'its history (system identifier once per connection)' : 'its history read in full'}` : ''}${variant.tag ? '; BEGIN with the branch tag' : ''}${variant.lastResource ? '; last-resource commit: ledger_b commits in one phase with its marker after ledger_a prepared' : ''}`,
    async setup(ctx) {
      const poolA = ctx.pool('ledger_a');
      const poolB = ctx.pool('ledger_b');
      if (variant.marker || variant.lastResource) {
        // The adapter's own migration creates twopc_marker exactly as the engine mode has it.
        for (const [name, pool] of [['ledger_a', poolA], ['ledger_b', poolB]] as const) await new PostgresParticipant({ name, pool }).start();
      }
      const decisions = await GroupCommitFile.create(path.join(ctx.tempDir('decisions'), 'decisions.log'));
      const step = <T>(kind: string, run: () => Promise<T>): Promise<T> => (ctx.tally ? ctx.tally.time(kind, run) : run());
      let sequence = 0;
      return {
        async transfer(t) {
          const real = variant.marker || variant.xid || variant.xidOnly || variant.tag || variant.lastResource;
          const txId = real ? uuidv7() : '';
          const gid = real ? buildGid('rawbench', txId, 1) : `rawbench_${++sequence}`;
          const clients = await Promise.all([poolA.connect(), poolB.connect()]);
          const [a, b] = clients;
          let decided = false;
          try {
            await step(`${name}: 1 work (begin, updates)`, async () => {
              const open = variant.tag ? `begin; set local application_name = '${gid}'` : 'begin';
              if (!variant.serialBegin) await Promise.all([a.query(open), b.query(open)]);
              if (variant.serialBegin) await a.query('begin');
              await a.query(UPDATE_BALANCE, [t.delta, t.accountA]);
              if (variant.serialBegin) await b.query('begin');
              await b.query(UPDATE_BALANCE, [-t.delta, t.accountB]);
            });
            if (variant.lastResource) {
              await step(`${name}: 2 prepare a, registration durable`, async () => {
                const [vote] = await Promise.allSettled([prepare(a, gid, txId), decisions.append(`${JSON.stringify({ gid, branches: ['ledger_a', 'ledger_b'] })}\n`)]);
                if (vote.status === 'rejected') throw vote.reason;
              });
              await step(`${name}: 3 commit b in one phase (the decision)`, async () => {
                const results = (await b.query(commitOnePhase('public', gid, txId, false))) as unknown as QueryResult[];
                if (results.at(-1)?.command !== 'COMMIT') throw new Error(`branch ${gid} on ledger_b: COMMIT answered ${results.at(-1)?.command}`);
              });
              decided = true;
              await step(`${name}: 4 commit prepared a`, () => a.query(`commit prepared '${gid}'`));
              for (const c of clients) c.release();
              return;
            }
            await step(`${name}: 2 prepare`, async () => {
              const votes = await Promise.allSettled([prepare(a, gid, txId), prepare(b, gid, txId)]);
              const no = votes.find((v): v is PromiseRejectedResult => v.status === 'rejected');
              if (no) throw no.reason;
            });
            await step(`${name}: 3 decide (group fdatasync)`, () => decisions.append(`${JSON.stringify({ gid, outcome: 'commit', branches: ['ledger_a', 'ledger_b'] })}\n`));
            decided = true;
            await step(`${name}: 4 commit prepared`, () => Promise.all([a.query(`commit prepared '${gid}'`), b.query(`commit prepared '${gid}'`)]));
            for (const c of clients) c.release();
          } catch (e) {
            // After the decision a real coordinator would retry COMMIT PREPARED; the bench's final check reports any left.
            if (!decided) await rollBack(clients, gid);
            for (const c of clients) c.release(true);
            throw e;
          }
        },
        profileNotes: () => [`${name} decision file: ${decisions.records} decisions in ${decisions.batches} fdatasyncs (${(decisions.records / Math.max(decisions.batches, 1)).toFixed(2)} per batch, whole run incl. warm-up)`],
        close: () => decisions.close(),
      };
    },
  };
}
