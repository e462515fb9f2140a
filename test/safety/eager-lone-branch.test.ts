import express from 'express';
import type { Server } from 'node:http';
import { Pool } from 'pg';
import { createParticipant, TwopcParticipant } from '../../participant-sdk/src';
import { PgCluster } from '../../harness/pg-cluster';
import { API_TOKEN, SECRET, startTestService, TestService } from '../service/service-fixture';

/**
 * Finding 3, second half: an eager branch prepares on its own right after it
 * is enlisted. When it is its transaction's only branch, the coordinator used
 * to "one-phase commit" it: a COMMIT PREPARED with no decision record. A
 * prepared branch must only ever be committed under a forced commit decision
 * (recovery and sweeps decide abort for a prepared branch they find with no
 * decision, and a COMMIT PREPARED still on its way would then land under it).
 * So an eager lone branch gets the full protocol: its vote, a forced commit
 * decision, then COMMIT PREPARED. A held lone branch still commits in one phase.
 */

const PREFIX = 'sel';
const DB = 'orders';

describe('an eager lone branch is committed under a forced decision, never in one phase', () => {
  let cluster: PgCluster;
  let svc: TestService;
  let pool: Pool;
  let participant: TwopcParticipant;
  let server: Server;

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-eager' });
    await cluster.createDatabase(DB);
    await cluster.withClient((c) => c.query('create table items (id text primary key)'), DB);
    svc = await startTestService({}, { gidPrefix: PREFIX });
    pool = new Pool({ ...cluster.connectionConfig(DB), max: 4 });
    const app = express();
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    participant = createParticipant({
      name: 'orders',
      pool,
      coordinatorUrl: svc.base,
      apiToken: API_TOKEN,
      secret: SECRET,
      publicUrl: `http://127.0.0.1:${port}/twopc`,
      gidPrefix: PREFIX,
      sweepIntervalMs: 0,
      pruneIntervalMs: 0,
    });
    app.use('/twopc', participant.router());
    await participant.start();
  });

  afterAll(async () => {
    await participant?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await svc?.close();
    await pool?.end();
    await cluster?.destroy();
  });

  afterEach(async () => {
    expect(await cluster.preparedGids(PREFIX)).toEqual([]);
  });

  async function runOne(mode: 'eager' | 'held'): Promise<{ id: string; commit: { status: number; body: any }; history: string[] }> {
    const begun = await svc.call('POST', '/v1/transactions', {});
    expect(begun.status).toBe(201);
    const id = begun.body.id as string;
    await participant.enlist(id, (db) => db.query('insert into items (id) values ($1)', [id]), { mode });
    const commit = await svc.call('POST', `/v1/transactions/${id}/commit`, {});
    const history = (await svc.service.engine.admin.history(id)).map((r) => (r.type === 'decision' ? `decision:${r.outcome}` : r.type));
    return { id, commit, history };
  }

  it('eager: the commit decision is logged before COMMIT PREPARED, and the branch commits', async () => {
    const { id, commit, history } = await runOne('eager');
    expect(commit).toMatchObject({ status: 200, body: { state: 'committed' } });
    expect(history).toEqual(['begin', 'enlist', 'decision:commit', 'complete']);
    expect(await cluster.withClient(async (c) => (await c.query('select id from items where id = $1', [id])).rows.length, DB)).toBe(1);
  });

  it('held: still one phase (no PREPARE, no decision record)', async () => {
    const { id, commit, history } = await runOne('held');
    expect(commit).toMatchObject({ status: 200, body: { state: 'committed' } });
    expect(history).toEqual(['begin', 'enlist', 'complete']);
    expect(await cluster.withClient(async (c) => (await c.query('select id from items where id = $1', [id])).rows.length, DB)).toBe(1);
  });
});
