import fc from 'fast-check';
import { validateGid } from '../../participant-sdk/src/gid';
import type { BranchRef } from '../../coordinator/engine/ports/participant';
import { transactionControlVerb } from '../../participant-sdk/src/postgres/branch-client';
import type { PostgresPool, PostgresPoolClient } from '../../participant-sdk/src/postgres/postgres-pool';
import { PostgresParticipant } from '../../participant-sdk/src/postgres/postgres-participant';
import * as sql from '../../participant-sdk/src/postgres/postgres-sql';
import { newBranch } from './postgres-fixture';

const TX = '01890a5d-ac96-774b-bcce-b302099a8057';
const GID = 'tpg_01890a5dac96774bbcceb302099a8057_1';
const HOSTILE_GIDS = [
  "tpg_01890a5dac96774bbcceb302099a8057_1'; DROP TABLE accounts; --",
  "x' OR '1'='1",
  'tpg_01890a5dac96774bbcceb302099a8057_1\u0000',
  'TPG_01890A5DAC96774BBCCEB302099A8057_1',
  `tpg_${'0'.repeat(32)}_1 `,
  `${'a'.repeat(180)}_${'0'.repeat(32)}_1`,
  '',
];

/** A pool that records what would reach PostgreSQL and answers nothing useful. */
function recordingPool(): { pool: PostgresPool; sent: string[] } {
  const sent: string[] = [];
  const client: PostgresPoolClient = {
    query: async (textOrConfig) => {
      const text = typeof textOrConfig === 'string' ? textOrConfig : textOrConfig.text;
      sent.push(text);
      if (/^(COMMIT|ROLLBACK) PREPARED/.test(text)) throw Object.assign(new Error('no such prepared transaction'), { code: '42704' });
      return { command: 'SELECT', rowCount: 0, rows: [] };
    },
    release: () => undefined,
    on: () => undefined,
    removeListener: () => undefined,
  };
  return { pool: { connect: async () => client }, sent };
}

describe('SQL of the PostgreSQL adapter', () => {
  it('splices a valid GID and txId as plain literals', () => {
    expect(sql.prepareBranch('public', GID, TX)).toBe(
      `SAVEPOINT twopc_in_block; RELEASE SAVEPOINT twopc_in_block; INSERT INTO "public".twopc_marker (gid, tx_id) SELECT '${GID}', '${TX}' WHERE pg_current_xact_id_if_assigned() IS NOT NULL; PREPARE TRANSACTION '${GID}'`,
    );
    expect(sql.commitPrepared(GID)).toBe(`COMMIT PREPARED '${GID}'`);
    expect(sql.rollbackPrepared(GID)).toBe(`ROLLBACK PREPARED '${GID}'`);
    expect(sql.beginBranch(GID, false)).toBe(`BEGIN; SET LOCAL application_name = '${GID}'`);
  });

  it('tags a branch with its GID, or with a digest of a GID too long for application_name', () => {
    expect(sql.branchTag(GID)).toBe(GID);
    const long = `${'p'.repeat(60)}_01890a5dac96774bbcceb302099a8057_1`;
    const tag = sql.branchTag(long);
    expect(tag).toMatch(/^twopc-sha256-[0-9a-f]{40}$/);
    expect(sql.branchTag(`${'p'.repeat(60)}_01890a5dac96774bbcceb302099a8057_2`)).not.toBe(tag);
    expect(sql.beginBranch(long, true)).toMatch(new RegExp(`^BEGIN; SET LOCAL application_name = '${tag}'; SELECT pg_backend_pid\\(\\)`));
  });

  it.each(HOSTILE_GIDS)('refuses to build SQL with the GID %j', (gid) => {
    for (const build of [() => sql.prepareBranch('public', gid, TX), () => sql.commitOnePhase('public', gid, TX), () => sql.commitPrepared(gid), () => sql.rollbackPrepared(gid), () => sql.beginBranch(gid, true), () => sql.branchState('public', gid)]) {
      expect(build).toThrow(expect.objectContaining({ code: 'invalid-input', details: { field: 'gid' } }));
    }
  });

  it('refuses a hostile txId and schema', () => {
    expect(() => sql.prepareBranch('public', GID, "x'; drop table t; --")).toThrow(expect.objectContaining({ code: 'invalid-input', details: { field: 'txId' } }));
    expect(() => sql.markerExists('public"; drop table t; --')).toThrow(expect.objectContaining({ code: 'invalid-config', details: { field: 'schema' } }));
  });

  it('never builds SQL with a quote, semicolon or backslash from an arbitrary GID', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[a-z][a-z0-9_]{0,8}_[0-9a-f]{32}_[1-9][0-9]{0,3}['; \\a-z]{0,3}$/)), (gid) => {
        let text: string;
        try {
          text = sql.rollbackPrepared(gid);
        } catch {
          return true;
        }
        validateGid(gid);
        return !/[';\\]/.test(text.slice('ROLLBACK PREPARED \''.length, -1));
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects hostile GIDs at the participant boundary before any statement is sent', async () => {
    const { pool, sent } = recordingPool();
    const participant = new PostgresParticipant({ name: 'boundary', pool });
    const ref = newBranch('boundary');
    for (const gid of HOSTILE_GIDS) {
      const hostile: BranchRef = { ...ref, gid };
      await expect(participant.commit(hostile)).rejects.toMatchObject({ code: 'invalid-input' });
      await expect(participant.commit(hostile, { onePhase: true })).rejects.toMatchObject({ code: 'invalid-input' });
      await expect(participant.rollback(hostile)).rejects.toMatchObject({ code: 'invalid-input' });
      await expect(participant.openBranch(hostile)).rejects.toMatchObject({ code: 'invalid-input' });
      expect(await participant.prepare(hostile)).toMatchObject({ vote: 'no' });
    }
    await expect(participant.listPrepared("tpg' or 1=1 --")).rejects.toMatchObject({ code: 'invalid-config' });
    expect(sent).toEqual([]);
    // A valid GID does reach the server: the recorder works. The rollback first
    // ends any backend still holding the branch, and after 42704 checks that
    // the branch did not commit (no marker) before calling it done.
    await participant.rollback(ref);
    expect(sent[0]).toMatch(/pg_terminate_backend/);
    expect(sent[1]).toBe(`ROLLBACK PREPARED '${ref.gid}'`);
    expect(sent[2]).toMatch(/twopc_marker/);
    expect(sent).toHaveLength(3);
    await participant.close();
  });
});

describe('transactionControlVerb', () => {
  it.each([
    ['commit', 'COMMIT'],
    ['COMMIT PREPARED \'x\'', 'COMMIT'],
    ['  end', 'END'],
    ['abort', 'ABORT'],
    ['Begin', 'BEGIN'],
    ['start  transaction isolation level serializable', 'START TRANSACTION'],
    ['rollback', 'ROLLBACK'],
    ['rollback prepared \'x\'', 'ROLLBACK'],
    ['prepare transaction \'x\'', 'PREPARE TRANSACTION'],
    ['-- comment\ncommit', 'COMMIT'],
    ['/* a /* nested */ comment */ ;; commit', 'COMMIT'],
  ])('finds %j', (text, verb) => {
    expect(transactionControlVerb(text)).toBe(verb);
  });

  it.each([
    'select 1',
    'rollback to savepoint s',
    'ROLLBACK TO s',
    'rollback work to savepoint s',
    'savepoint s',
    'release savepoint s',
    'prepare stmt as select 1',
    'update t set ending = 1',
    'committed_at',
    "insert into t values ('commit')",
    '/* commit */ select 1',
  ])('lets %j through', (text) => {
    expect(transactionControlVerb(text)).toBeUndefined();
  });
});
