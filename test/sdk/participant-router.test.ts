import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Pool } from 'pg';
import { createParticipant, ParticipantOptions, TransactionAbortedError, TwopcParticipant } from '../../participant-sdk/src';
import { signRequest } from '../../participant-sdk/src/signature';
import { PgCluster } from '../../harness/pg-cluster';
import { callParticipant, closeServer, FakeCoordinator, listen, mountParticipant, PREFIX, RecordingPool, SECRET, TOKEN } from './sdk-fixture';
import { accountsTableSql } from '../../harness/bank';

const DB = 'sdk_router';
jest.setTimeout(30_000);

describe('participant SDK: router and enlist', () => {
  let cluster: PgCluster;
  let coordinator: FakeCoordinator;
  let pg: Pool;
  let pool: RecordingPool;
  let server: Server;
  let base: string;
  let participant: TwopcParticipant;

  const sql = async <R extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]> =>
    cluster.withClient(async (c) => (await c.query<R>(text, values)).rows, DB);
  const balance = async (id: number): Promise<number | undefined> => (await sql<{ balance: number }>('select balance from accounts where id = $1', [id]))[0]?.balance;
  const held = (): number => pg.totalCount - pg.idleCount;

  async function setup(overrides: Partial<ParticipantOptions> = {}): Promise<void> {
    ({ participant, server, base } = await mountParticipant(pool, coordinator, overrides));
  }

  const post = (suffix: string, body: unknown) => callParticipant(base, 'POST', suffix, body);
  const status = async (gid: string) => (await callParticipant(base, 'GET', `/branches/${gid}`)).body.state;

  /** Enlists a branch of a new transaction that sets account 1's balance. */
  async function enlistWrite(value: number, mode?: 'held' | 'eager') {
    const txId = coordinator.begin();
    await participant.enlist(txId, (db) => db.query('update accounts set balance = $1 where id = 1', [value]), mode ? { mode } : {});
    return coordinator.branch(txId);
  }

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'sdk-router' });
    await cluster.createDatabase(DB);
    await sql(accountsTableSql({ balance: 'int' }));
    await sql('create table deferred (id int, constraint deferred_id unique (id) deferrable initially deferred)');
    coordinator = new FakeCoordinator();
    await coordinator.start();
  });

  afterAll(async () => {
    await coordinator?.stop();
    await cluster?.destroy();
  });

  beforeEach(async () => {
    await sql('truncate accounts, deferred');
    await sql('insert into accounts values (1, 100)');
    coordinator.getMode = 'normal';
    coordinator.sendExpiresAt = true;
    pg = new Pool({ ...cluster.connectionConfig(DB), max: 4 });
    pool = new RecordingPool(pg);
  });

  afterEach(async () => {
    await participant?.close();
    if (server) await closeServer(server);
    await pg.end();
    const left = await cluster.preparedGids(PREFIX);
    for (const gid of left) await sql(`rollback prepared '${gid}'`);
    expect(left).toEqual([]);
  });

  describe('signatures', () => {
    it('answers 401 problem+json to a call that is unsigned, wrongly signed, expired, malformed, or signed for another body or path', async () => {
      await setup();
      const body = coordinator.branch(coordinator.begin());
      const cases = [
        await callParticipant(base, 'POST', '/rollback', body, { signature: null }),
        await callParticipant(base, 'POST', '/rollback', body, { secret: 'another-secret-entirely' }),
        await callParticipant(base, 'POST', '/rollback', body, { now: Date.now() - 6 * 60 * 1000 }),
        await callParticipant(base, 'POST', '/rollback', body, { now: Date.now() + 6 * 60 * 1000 }),
        await callParticipant(base, 'POST', '/rollback', body, { signature: 't=1,v1=zz' }),
        await callParticipant(base, 'GET', `/branches/${body.gid}`, undefined, { signature: null }),
      ];
      // Signed over one body, sent with another.
      const signed = signRequest(SECRET, 'POST', '/twopc/rollback', JSON.stringify(body));
      cases.push(await callParticipant(base, 'POST', '/rollback', { ...body, branchId: 2 }, { signature: signed }));
      cases.push(await callParticipant(base, 'POST', '/prepare', body, { signature: signed }));
      for (const answer of cases) {
        expect(answer.status).toBe(401);
        expect(answer.type).toMatch(/^application\/problem\+json/);
        expect(answer.body).toMatchObject({ status: 401, code: 'unauthorized' });
      }
      expect(cases.map((c) => c.body.detail)).toEqual(expect.arrayContaining([expect.stringMatching(/missing/), expect.stringMatching(/mismatch/), expect.stringMatching(/expired/), expect.stringMatching(/malformed/)]));
    });

    it('leaves the service\'s own routes alone when mounted at the root', async () => {
      const app = express();
      ({ server, url: base } = await listen(app));
      participant = createParticipant({ name: 'orders', pool, coordinatorUrl: coordinator.url, secret: SECRET, publicUrl: base, gidPrefix: PREFIX, sweepIntervalMs: 0, pruneIntervalMs: 0 });
      app.use(participant.router());
      app.post('/orders', express.json(), (req, res) => void res.status(201).json({ got: req.body }));
      await participant.start();
      const own = await callParticipant(base, 'POST', '/orders', { item: 1 }, { signature: null });
      expect(own).toMatchObject({ status: 201, body: { got: { item: 1 } } });
      expect((await callParticipant(base, 'POST', '/rollback', coordinator.branch(coordinator.begin()))).status).toBe(200);
    });
  });

  describe('plain handler', () => {
    it('serves the same calls from a bare node:http server, below publicUrl\'s path, handing anything else to next', async () => {
      let handler: ReturnType<TwopcParticipant['handler']> | undefined;
      server = http.createServer((req, res) => handler!(req, res, () => void res.writeHead(418).end('app')));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/deep/twopc`;
      participant = createParticipant({ name: 'orders', pool, coordinatorUrl: coordinator.url, apiToken: TOKEN, secret: SECRET, publicUrl: base, gidPrefix: PREFIX, sweepIntervalMs: 0, pruneIntervalMs: 0 });
      handler = participant.handler();
      await participant.start();
      const txId = coordinator.begin();
      await participant.enlist(txId, (db) => db.query('update accounts set balance = 5 where id = 1'));
      const branch = coordinator.branch(txId);
      expect(await post('/batch', { calls: [{ op: 'prepare', ...branch }] })).toMatchObject({ status: 200, body: { results: [{ status: 200, body: { vote: 'yes' } }] } });
      expect(await status(branch.gid)).toBe('prepared');
      expect(await post('/commit', branch)).toMatchObject({ status: 200, body: { state: 'committed' } });
      expect(await balance(1)).toBe(5);
      expect(await post('/rollback', branch)).toMatchObject({ status: 409, body: { code: 'heuristic-hazard' } });
      // Unsigned, or not one of its routes: refused, or left to the app.
      expect((await callParticipant(base, 'POST', '/rollback', branch, { signature: null })).status).toBe(401);
      expect((await callParticipant(base, 'POST', '/orders', {})).status).toBe(418);
      expect((await callParticipant(base.replace('/deep/twopc', ''), 'POST', '/prepare', branch)).status).toBe(418);
    });
  });

  describe('held mode (default)', () => {
    it('holds the connection until prepare, then commits; every call repeated gets the same answer', async () => {
      await setup();
      const branch = await enlistWrite(7);
      expect(coordinator.seenAuth.at(-1)).toBe(`Bearer ${TOKEN}`);
      // Held: prepared only when the coordinator asks, so it may answer before writing the registration.
      expect(coordinator.seenPrepare.at(-1)).toBe('held');
      expect(coordinator.txs.get(branch.txId)?.branches).toEqual([{ branchId: 1, gid: branch.gid, participant: 'orders', url: base }]);
      expect(held()).toBe(1);
      expect(await status(branch.gid)).toBe('active');

      expect(await post('/prepare', branch)).toMatchObject({ status: 200, body: { vote: 'yes' } });
      expect(held()).toBe(0);
      expect(await post('/prepare', branch)).toMatchObject({ status: 200, body: { vote: 'yes' } });
      expect(await status(branch.gid)).toBe('prepared');
      expect(await cluster.preparedGids(PREFIX)).toEqual([branch.gid]);

      expect(await post('/commit', branch)).toMatchObject({ status: 200, body: { state: 'committed' } });
      expect(await post('/commit', branch)).toMatchObject({ status: 200, body: { state: 'committed' } });
      expect(await balance(1)).toBe(7);
      expect(await status(branch.gid)).toBe('committed');
      // A rollback after the commit contradicts it: reported, never acknowledged.
      expect(await post('/rollback', branch)).toMatchObject({ status: 409, body: { code: 'heuristic-hazard' } });
      expect(await balance(1)).toBe(7);
    });

    it('serves the batched form: one result per call, in order, each what its per-call route answers; says so at enlistment', async () => {
      await setup();
      const txs = [coordinator.begin(), coordinator.begin(), coordinator.begin()];
      await participant.enlist(txs[0], (db) => db.query('update accounts set balance = balance + 1 where id = 1'));
      await participant.enlist(txs[1], (db) => db.query('insert into deferred values (5)'));
      await participant.enlist(txs[2], (db) => db.query('insert into deferred values (5)'));
      expect(coordinator.seenAccepts.slice(-3)).toEqual([['batch'], ['batch'], ['batch']]);
      const [a, b, c] = txs.map((id) => coordinator.branch(id));
      const stranger = coordinator.branch(coordinator.begin());
      const prepared = await post('/batch', {
        calls: [{ op: 'prepare', ...a }, { op: 'prepare', ...b }, { op: 'prepare', ...stranger }, { op: 'prepare', ...a, gid: b.gid }],
      });
      expect(prepared.status).toBe(200);
      // Each result echoes its call's op and gid, so the coordinator can check the order.
      expect(prepared.body.results).toEqual([
        { status: 200, body: { vote: 'yes' }, op: 'prepare', gid: a.gid },
        { status: 200, body: { vote: 'yes' }, op: 'prepare', gid: b.gid },
        { status: 409, body: expect.objectContaining({ vote: 'no' }), op: 'prepare', gid: stranger.gid },
        { status: 400, body: expect.objectContaining({ code: 'invalid-input', field: 'gid' }), op: 'prepare', gid: b.gid },
      ]);
      // c's unique key waits at PREPARE on b's prepared one; b's rollback, in the same batch, lets it through.
      const ended = await post('/batch', { calls: [{ op: 'commit', ...a }, { op: 'rollback', ...b }, { op: 'prepare', ...c }, { op: 'commit', ...a }] });
      expect(ended.body.results.map((r: { status: number; body: unknown }) => [r.status, r.body])).toEqual([
        [200, { state: 'committed' }],
        [200, { state: 'rolled-back' }],
        [200, { vote: 'yes' }],
        [200, { state: 'committed' }],
      ]);
      expect(await post('/batch', { calls: [{ op: 'commit', ...c }] })).toMatchObject({ status: 200, body: { results: [{ status: 200, body: { state: 'committed' } }] } });
      expect(await balance(1)).toBe(101);
      expect(await sql('select id from deferred')).toEqual([{ id: 5 }]);
      expect(await cluster.preparedGids(PREFIX)).toEqual([]);
      // A malformed batch is refused as a whole, naming the field, with no call run.
      expect(await post('/batch', { calls: [] })).toMatchObject({ status: 400, body: { code: 'invalid-input', field: 'calls' } });
      expect(await post('/batch', { calls: [{ op: 'vote', ...a }] })).toMatchObject({ status: 400, body: { code: 'invalid-input' } });
    });

    it("answers each batched call within the batch's budget: a call still waiting gets its own 503 while the others' answers leave", async () => {
      await setup();
      const [tb, tc, ta] = [coordinator.begin(), coordinator.begin(), coordinator.begin()];
      await participant.enlist(tb, (db) => db.query('insert into deferred values (6)'));
      await participant.enlist(tc, (db) => db.query('insert into deferred values (6)'));
      await participant.enlist(ta, (db) => db.query('update accounts set balance = balance + 1 where id = 1'));
      const [b, c, a] = [tb, tc, ta].map((id) => coordinator.branch(id));
      expect((await post('/prepare', b)).body).toEqual({ vote: 'yes' });
      // c's PREPARE waits on b's prepared unique key for as long as b stays prepared.
      const answer = await post('/batch?budgetMs=300', { calls: [{ op: 'prepare', ...c }, { op: 'prepare', ...a }] });
      expect(answer.status).toBe(200);
      expect(answer.body.results).toEqual([
        { status: 503, body: expect.objectContaining({ code: 'outcome-unknown' }), op: 'prepare', gid: c.gid },
        { status: 200, body: { vote: 'yes' }, op: 'prepare', gid: a.gid },
      ]);
      // c's prepare ran on; asked again once b is gone, it answers its vote (the unique key now free).
      expect((await post('/rollback', b)).body).toEqual({ state: 'rolled-back' });
      expect((await post('/prepare', c)).body).toEqual({ vote: 'yes' });
      for (const branch of [a, c]) expect((await post('/commit', branch)).body).toEqual({ state: 'committed' });
      expect(await sql('select id from deferred')).toEqual([{ id: 6 }]);
    });

    it('sends at most 1000 characters of a vote reason', async () => {
      await setup();
      const txId = coordinator.begin();
      const long = 'x'.repeat(5000);
      await expect(participant.enlist(txId, async () => Promise.reject(new Error(long)))).rejects.toThrow();
      const vote = await post('/prepare', coordinator.branch(txId));
      expect(vote.status).toBe(409);
      expect(vote.body.reason.length).toBeLessThanOrEqual(1000);
    });

    it('rolls back, repeatedly, and then votes no', async () => {
      await setup();
      const branch = await enlistWrite(8);
      expect(await post('/rollback', branch)).toMatchObject({ status: 200, body: { state: 'rolled-back' } });
      expect(held()).toBe(0);
      expect(await post('/rollback', branch)).toMatchObject({ status: 200, body: { state: 'rolled-back' } });
      const vote = await post('/prepare', branch);
      expect(vote).toMatchObject({ status: 409, body: { vote: 'no' } });
      expect(vote.body.reason).toMatch(/rolled back/);
      expect(await balance(1)).toBe(100);
    });

    it('rolls back a prepared branch by GID', async () => {
      await setup();
      const branch = await enlistWrite(9);
      expect((await post('/prepare', branch)).body).toEqual({ vote: 'yes' });
      expect(await post('/rollback', branch)).toMatchObject({ status: 200, body: { state: 'rolled-back' } });
      expect(await post('/rollback', branch)).toMatchObject({ status: 200 });
      expect(await status(branch.gid)).toBe('unknown');
      expect(await balance(1)).toBe(100);
    });

    it('votes read-only for a branch that only read, and answers repeats and commit the same way', async () => {
      await setup();
      const txId = coordinator.begin();
      const rows = await participant.enlist(txId, async (db) => (await db.query<{ balance: number }>('select balance from accounts where id = 1')).rows);
      expect(rows).toEqual([{ balance: 100 }]);
      const branch = coordinator.branch(txId);
      expect(await post('/prepare', branch)).toMatchObject({ status: 200, body: { vote: 'read-only' } });
      expect(await post('/prepare', branch)).toMatchObject({ status: 200, body: { vote: 'read-only' } });
      expect(await cluster.preparedGids(PREFIX)).toEqual([]);
      expect(await post('/commit', branch)).toMatchObject({ status: 200, body: { state: 'committed' } });
      expect(await post('/rollback', branch)).toMatchObject({ status: 200 });
      expect(held()).toBe(0);
    });

    it('commits in one phase, idempotently', async () => {
      await setup();
      const branch = await enlistWrite(11);
      expect(await post('/commit', { ...branch, onePhase: true })).toMatchObject({ status: 200, body: { state: 'committed' } });
      expect(await post('/commit', { ...branch, onePhase: true })).toMatchObject({ status: 200, body: { state: 'committed' } });
      expect(await balance(1)).toBe(11);
      expect(await status(branch.gid)).toBe('committed');
      expect(held()).toBe(0);
    });

    it('answers 409 rolled-back when the one-phase COMMIT fails, and again when repeated', async () => {
      await setup();
      const txId = coordinator.begin();
      await participant.enlist(txId, (db) => db.query('insert into deferred values (1), (1)'));
      const branch = coordinator.branch(txId);
      for (let i = 0; i < 2; i++) {
        const answer = await post('/commit', { ...branch, onePhase: true });
        expect(answer).toMatchObject({ status: 409, body: { state: 'rolled-back' } });
        expect(answer.body.reason).toMatch(/deferred_id/);
      }
      expect(await sql('select * from deferred')).toEqual([]);
      expect(held()).toBe(0);
    });

    it('rolls the branch back when the work throws, rethrows, and votes no with the reason', async () => {
      await setup();
      const txId = coordinator.begin();
      await expect(
        participant.enlist(txId, async (db) => {
          await db.query('update accounts set balance = 12 where id = 1');
          throw new Error('out of stock');
        }),
      ).rejects.toThrow('out of stock');
      expect(held()).toBe(0);
      const vote = await post('/prepare', coordinator.branch(txId));
      expect(vote).toMatchObject({ status: 409, body: { vote: 'no' } });
      expect(vote.body.reason).toMatch(/out of stock/);
      expect((await post('/commit', { ...coordinator.branch(txId), onePhase: true })).status).toBe(409);
      expect(await post('/rollback', coordinator.branch(txId))).toMatchObject({ status: 200 });
      expect(await balance(1)).toBe(100);
    });

    it('votes no, with a reason, for a branch it never opened', async () => {
      await setup();
      const vote = await post('/prepare', coordinator.branch(coordinator.begin()));
      expect(vote).toMatchObject({ status: 409, body: { vote: 'no' } });
      expect(vote.body.reason).toMatch(/not open/);
    });

    it('waits for work still running before voting, so the vote covers all of it', async () => {
      await setup();
      const txId = coordinator.begin();
      let finish!: () => void;
      const gate = new Promise<void>((r) => (finish = r));
      const enlisted = participant.enlist(txId, async (db) => {
        await db.query('update accounts set balance = 13 where id = 1');
        await gate;
        await db.query('insert into accounts values (2, 2)');
      });
      await new Promise((r) => setTimeout(r, 100));
      const vote = post('/prepare', coordinator.branch(txId));
      await new Promise((r) => setTimeout(r, 100));
      finish();
      await enlisted;
      expect((await vote).body).toEqual({ vote: 'yes' });
      expect(await post('/commit', coordinator.branch(txId))).toMatchObject({ status: 200 });
      expect(await sql('select id, balance from accounts order by id')).toEqual([{ id: 1, balance: 13 }, { id: 2, balance: 2 }]);
    });
  });

  describe('held-branch timeout', () => {
    it('rolls back a branch never asked to prepare once its transaction expired, releasing the connection', async () => {
      await setup({ heldGraceMs: 0 });
      const txId = coordinator.begin(300);
      await participant.enlist(txId, (db) => db.query('update accounts set balance = 14 where id = 1'));
      expect(held()).toBe(1);
      const started = Date.now();
      await waitForHeld(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
      const vote = await post('/prepare', coordinator.branch(txId));
      expect(vote).toMatchObject({ status: 409, body: { vote: 'no' } });
      expect(vote.body.reason).toMatch(/expired/);
      expect(await balance(1)).toBe(100);
    });

    it('cancels work still running at expiry', async () => {
      await setup({ heldGraceMs: 0 });
      const txId = coordinator.begin(300);
      const started = Date.now();
      const error = await participant.enlist(txId, (db) => db.query('select pg_sleep(20)')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(held()).toBe(0);
    });

    it('learns the expiry from GET /v1/transactions/:id when the enlist answer has none', async () => {
      coordinator.sendExpiresAt = false;
      await setup({ heldGraceMs: 0 });
      const txId = coordinator.begin(300);
      await participant.enlist(txId, (db) => db.query('update accounts set balance = 15 where id = 1'));
      await waitForHeld(0);
      expect((await post('/prepare', coordinator.branch(txId))).status).toBe(409);
    });

    it('never rolls back a branch that voted yes', async () => {
      await setup({ heldGraceMs: 0 });
      const txId = coordinator.begin(200);
      await participant.enlist(txId, (db) => db.query('update accounts set balance = 16 where id = 1'));
      expect((await post('/prepare', coordinator.branch(txId))).body).toEqual({ vote: 'yes' });
      await new Promise((r) => setTimeout(r, 400));
      expect(await cluster.preparedGids(PREFIX)).toEqual([coordinator.branch(txId).gid]);
      expect(await post('/commit', coordinator.branch(txId))).toMatchObject({ status: 200 });
      expect(await balance(1)).toBe(16);
    });
  });

  describe('eager mode', () => {
    it('prepares when the work ends, frees the connection, and answers prepare from the recorded vote', async () => {
      await setup({ mode: 'eager' });
      const branch = await enlistWrite(17);
      // Eager: the coordinator must write the registration before it answers.
      expect(coordinator.seenPrepare.at(-1)).toBe('eager');
      expect(held()).toBe(0);
      expect(await cluster.preparedGids(PREFIX)).toEqual([branch.gid]);
      expect(await post('/prepare', branch)).toMatchObject({ status: 200, body: { vote: 'yes' } });
      expect(await post('/prepare', branch)).toMatchObject({ status: 200, body: { vote: 'yes' } });
      expect(await post('/commit', branch)).toMatchObject({ status: 200, body: { state: 'committed' } });
      expect(await post('/commit', branch)).toMatchObject({ status: 200 });
      expect(await balance(1)).toBe(17);
    });

    it('commits a prepared branch asked to commit in one phase', async () => {
      await setup({ mode: 'eager' });
      const branch = await enlistWrite(18);
      expect(await post('/commit', { ...branch, onePhase: true })).toMatchObject({ status: 200, body: { state: 'committed' } });
      expect(await post('/commit', { ...branch, onePhase: true })).toMatchObject({ status: 200, body: { state: 'committed' } });
      expect(await balance(1)).toBe(18);
    });

    it('rolls back a prepared branch', async () => {
      await setup({ mode: 'eager' });
      const branch = await enlistWrite(19);
      expect(await post('/rollback', branch)).toMatchObject({ status: 200 });
      expect(await post('/rollback', branch)).toMatchObject({ status: 200 });
      expect(await balance(1)).toBe(100);
    });

    it('records a read-only vote, and throws TransactionAbortedError when PREPARE fails', async () => {
      await setup();
      const readTx = coordinator.begin();
      await participant.enlist(readTx, (db) => db.query('select 1'), { mode: 'eager' });
      expect(await post('/prepare', coordinator.branch(readTx))).toMatchObject({ status: 200, body: { vote: 'read-only' } });

      const failTx = coordinator.begin();
      const error = await participant
        .enlist(failTx, async (db) => {
          await db.query('update accounts set balance = 20 where id = 1');
          await db.query('select 1/0').catch(() => undefined); // the block is now failed
        }, { mode: 'eager' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransactionAbortedError);
      expect((error as TransactionAbortedError).reason.message).toMatch(/division by zero/);
      expect(await post('/prepare', coordinator.branch(failTx))).toMatchObject({ status: 409, body: { vote: 'no' } });
      expect(await balance(1)).toBe(100);
    });
  });

  describe('input', () => {
    const hostile = [
      "tsdk_01890a5dac96774bbcceb302099a8057_1'; DROP TABLE accounts; --",
      "x' OR '1'='1",
      'TSDK_01890A5DAC96774BBCCEB302099A8057_1',
      `tsdk_${'0'.repeat(32)}_1 `,
      `${'a'.repeat(180)}_${'0'.repeat(32)}_1`,
      '',
    ];

    it('rejects hostile GIDs with 400 naming gid, before any statement reaches the database', async () => {
      await setup();
      const txId = coordinator.begin();
      const before = pool.statements.length;
      for (const gid of hostile) {
        for (const suffix of ['/prepare', '/commit', '/rollback']) {
          const answer = await post(suffix, { txId, branchId: 1, gid });
          expect(answer).toMatchObject({ status: 400, body: { code: 'invalid-input', field: 'gid' } });
          expect(answer.type).toMatch(/^application\/problem\+json/);
        }
        if (gid) expect((await callParticipant(base, 'GET', `/branches/${encodeURIComponent(gid)}`)).status).toBe(400);
      }
      expect(pool.statements.slice(before)).toEqual([]);
    });

    it('rejects a GID that is not the one of the call\'s transaction and branch, or not of our prefix', async () => {
      await setup();
      const branch = coordinator.branch(coordinator.begin());
      const other = coordinator.branch(coordinator.begin());
      for (const body of [{ ...branch, gid: other.gid }, { ...branch, branchId: 2 }, { ...branch, gid: branch.gid.replace(/^tsdk/, 'other') }]) {
        expect(await post('/rollback', body)).toMatchObject({ status: 400, body: { code: 'invalid-input', field: 'gid' } });
      }
    });

    it('answers 400 naming the field for bad bodies, 413 over the limit, never 500', async () => {
      await setup({ maxBodyBytes: 1024 });
      const branch = coordinator.branch(coordinator.begin());
      expect(await callParticipant(base, 'POST', '/prepare', undefined, { rawBody: '{"txId":' })).toMatchObject({ status: 400, body: { field: '(body)' } });
      expect(await post('/prepare', { ...branch, txId: 'nope' })).toMatchObject({ status: 400, body: { field: 'txId' } });
      expect(await post('/prepare', { txId: branch.txId, gid: branch.gid })).toMatchObject({ status: 400, body: { field: 'branchId' } });
      expect(await post('/prepare', { ...branch, extra: 1 })).toMatchObject({ status: 400, body: { code: 'invalid-input' } });
      expect(await post('/commit', { ...branch, onePhase: 'yes' })).toMatchObject({ status: 400, body: { field: 'onePhase' } });
      expect(await post('/prepare', [])).toMatchObject({ status: 400 });
      expect(await post('/prepare', null)).toMatchObject({ status: 400 });
      expect(await post('/prepare', { ...branch, pad: 'x'.repeat(2000) })).toMatchObject({ status: 413, body: { code: 'payload-too-large' } });
    });

    it('answers 503 shutting-down once closed', async () => {
      await setup();
      await participant.close();
      expect(await post('/rollback', coordinator.branch(coordinator.begin()))).toMatchObject({ status: 503, body: { code: 'shutting-down' } });
      await expect(participant.enlist(coordinator.begin(), async () => 1)).rejects.toMatchObject({ code: 'shutting-down' });
    });
  });

  async function waitForHeld(n: number): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (held() !== n) {
      if (Date.now() > deadline) throw new Error(`still ${held()} connections held`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
});
