import express from 'express';
import type { Server } from 'node:http';
import { startTestService, TestService, waitFor } from '../service/service-fixture';

/**
 * Finding 9: a one-phase commit whose participant reports a heuristic hazard
 * (its branch ended in a way that contradicts or cannot confirm the commit:
 * retrying cannot change that) used to be retried forever, with nothing
 * recorded and nothing shown to an operator. It now stops: the hazard is
 * recorded in the log, shown by status reads and `list --state heuristic`,
 * the client's commit answers `heuristic-hazard`, and recovery leaves the
 * transaction to an operator.
 */

/** A participant service speaking the wire protocol that answers a one-phase commit with a heuristic hazard. */
async function hazardousParticipant(): Promise<{ url: string; commits: () => number; close(): Promise<void> }> {
  let commits = 0;
  const app = express();
  app.use(express.text({ type: '*/*' }));
  app.post('/twopc/prepare', (_req, res) => res.json({ vote: 'yes' }));
  app.post('/twopc/commit', (_req, res) => {
    commits += 1;
    res
      .status(409)
      .type('application/problem+json')
      .send(JSON.stringify({ type: 'urn:twopc:problem:heuristic-hazard', title: 'heuristic-hazard', status: 409, code: 'heuristic-hazard', detail: 'the branch was rolled back by hand' }));
  });
  app.post('/twopc/rollback', (_req, res) => res.json({ state: 'rolled-back' }));
  app.get('/twopc/branches/:gid', (_req, res) => res.json({ state: 'unknown' }));
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/twopc`,
    commits: () => commits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('a one-phase commit that meets a heuristic hazard stops and surfaces it', () => {
  let svc: TestService;
  let participant: Awaited<ReturnType<typeof hazardousParticipant>>;

  beforeAll(async () => {
    participant = await hazardousParticipant();
    svc = await startTestService({}, { commitWaitMs: 2_000 });
  });

  afterAll(async () => {
    await svc?.close();
    await participant?.close();
  });

  it('records the hazard, answers heuristic-hazard, and stops asking', async () => {
    const begun = await svc.call('POST', '/v1/transactions', {});
    const id = begun.body.id as string;
    expect((await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'orders', url: participant.url, prepare: 'held' })).status).toBe(201);

    const commit = await svc.call('POST', `/v1/transactions/${id}/commit`, {});
    expect(commit).toMatchObject({ status: 409, body: { code: 'heuristic-hazard' } });
    expect(participant.commits()).toBeGreaterThanOrEqual(1);

    // The retry loop ended: the transaction is no longer run by the engine, and its hazard is in the log.
    await waitFor('the one-phase loop to end', () => !svc.service.engine.runsHere(id), 5_000);
    const status = await svc.call('GET', `/v1/transactions/${id}`);
    expect(status.body).toMatchObject({ id, decision: null, hazards: [{ branchId: 1, participant: 'orders' }] });
    expect(status.body.hazards[0].detail).toMatch(/heuristic hazard/);
    const heuristic = await svc.service.engine.admin.list({ state: 'heuristic' });
    expect(heuristic.transactions.map((t) => t.id)).toEqual([id]);
    // A client asking again gets the same answer; recovery leaves it to an operator.
    expect(await svc.call('POST', `/v1/transactions/${id}/commit`, {})).toMatchObject({ status: 503, body: { code: 'outcome-unknown' } });
    expect(await svc.service.engine.admin.recover({ waitMs: 0 })).toMatchObject({ leftForLater: 1, decidedAbort: 0, decidedCommit: 0 });
    expect(await svc.service.engine.admin.hazardousCount()).toBe(1);
  });
});
