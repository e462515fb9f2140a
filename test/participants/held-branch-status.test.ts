import { BranchClient } from '../../participant-sdk/src/postgres/branch-client';
import { HeldBranch } from '../../participant-sdk/src/postgres/held-branch';
import type { PostgresPoolClient, PostgresQueryResult } from '../../participant-sdk/src/postgres/postgres-pool';
import { newBranch } from './postgres-fixture';

/**
 * When may the adapter trust the connection's transaction status instead of
 * asking the server with its in-block guard (HeldBranch.inOpenBlock)? pg
 * rejects a failing statement at its ErrorResponse, before the ReadyForQuery
 * that updates the status, so a status read right after a rejection can be
 * stale: it still says 'T' when the text had ended the block ("…; COMMIT;
 * SELECT 1/0"). This driver stand-in keeps the status where the test puts it,
 * to hold that window open.
 */
describe('HeldBranch.inOpenBlock', () => {
  const result = (command: string, rows: Record<string, unknown>[] = []): PostgresQueryResult => ({ command, rows, rowCount: rows.length });

  function fakeClient(withStatus = true) {
    const state = { status: 'T' as string | null, hang: undefined as Promise<never> | undefined };
    const client: PostgresPoolClient = {
      query(text) {
        const sql = typeof text === 'string' ? text : text.text;
        // pg answers a submittable (a Query or Cursor object) with the object itself, not a promise.
        if (sql === 'submittable') return { text: sql } as unknown as Promise<PostgresQueryResult>;
        // pg answers a config that carries its own callback with undefined.
        if (sql === 'with-callback') return undefined as unknown as Promise<PostgresQueryResult>;
        if (sql === 'hang') return (state.hang = new Promise<never>(() => undefined));
        if (sql === 'fail') return Promise.reject(Object.assign(new Error('division by zero'), { code: '22012' }));
        if (sql.startsWith('BEGIN')) return Promise.resolve([result('BEGIN'), result('SET'), result('SELECT', [{ pid: 1, xact_start: '1' }])]);
        return Promise.resolve(result('SELECT'));
      },
      release: () => undefined,
      on: () => undefined,
      removeListener: () => undefined,
      ...(withStatus ? { getTransactionStatus: () => state.status } : {}),
    };
    return { client, state };
  }

  async function open(withStatus = true) {
    const { client, state } = fakeClient(withStatus);
    const held = await HeldBranch.begin(newBranch('accounts'), 'accounts', client, new WeakMap());
    return { held, branch: new BranchClient(held), state };
  }

  it('trusts the status after BEGIN and after a statement that succeeded, only when it says T', async () => {
    const { held, branch, state } = await open();
    expect(held.inOpenBlock()).toBe(true);
    await branch.query('select 1');
    expect(held.inOpenBlock()).toBe(true);
    state.status = 'I';
    expect(held.inOpenBlock()).toBe(false);
    state.status = 'E';
    expect(held.inOpenBlock()).toBe(false);
  });

  it('does not trust it after a statement was rejected (its ReadyForQuery may not have come yet), until one succeeds', async () => {
    const { held, branch } = await open();
    await expect(branch.query('fail')).rejects.toMatchObject({ code: '22012' });
    // The stand-in still says 'T', as pg's status does between the ErrorResponse and the ReadyForQuery.
    expect(held.inOpenBlock()).toBe(false);
    await branch.query('rollback to savepoint s');
    expect(held.inOpenBlock()).toBe(true);
  });

  it('does not trust it while a statement is sent and unanswered', async () => {
    const { held, branch } = await open();
    void branch.query('hang');
    expect(held.running).toBe(1);
    expect(held.inOpenBlock()).toBe(false);
  });

  it('does not trust it, for the rest of the branch, once a statement came back as a submittable rather than a promise', async () => {
    const { held, branch } = await open();
    await branch.query({ text: 'submittable' });
    await branch.query('select 1');
    expect(held.inOpenBlock()).toBe(false);
  });

  it('answers a statement sent with its own callback (pg returns nothing) with a promise, and counts it as a possible write', async () => {
    const { held, branch } = await open();
    let threw: unknown;
    let answered: Promise<unknown> | undefined;
    try {
      answered = branch.query({ text: 'with-callback' });
    } catch (e) {
      threw = e;
    }
    expect(threw).toBeUndefined();
    await expect(answered).resolves.toBeUndefined();
    // Its answer goes to the callback, unseen here: it may have written, and the status is never current again.
    expect({ mayHaveWritten: held.mayHaveWritten, inOpenBlock: held.inOpenBlock() }).toEqual({ mayHaveWritten: true, inOpenBlock: false });
  });

  it('does not trust a connection that tells no status (an older pg, a wrapping pool)', async () => {
    const { held } = await open(false);
    expect(held.inOpenBlock()).toBe(false);
  });
});
