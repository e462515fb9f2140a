import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestService, TestService, waitFor } from '../service/service-fixture';

/**
 * A one-phase COMMIT whose first attempt reached the participant (which
 * committed and died before answering) and whose retry found the participant
 * still down (connection refused). The refusal proves only that the retry did
 * not arrive, not that the first attempt did not commit: the transaction must
 * not be answered or recorded aborted. Once the participant is back it answers
 * the retry "committed" (from its marker), and that is the outcome.
 */
describe('a retried one-phase commit that finds its participant down', () => {
  let svc: TestService;
  let participant: http.Server | undefined;

  beforeAll(async () => {
    svc = await startTestService({}, { commitWaitMs: 300 });
  });

  afterAll(async () => {
    participant?.close();
    await svc?.close();
  });

  it('is not reported aborted; it completes committed once the participant answers', async () => {
    // First incarnation: takes the COMMIT, "commits", then dies without answering.
    let commitsSeen = 0;
    const first = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        commitsSeen += 1;
        res.socket?.destroy();
        first.close();
        first.closeAllConnections();
      });
    });
    await new Promise<void>((r) => first.listen(0, '127.0.0.1', r));
    const port = (first.address() as AddressInfo).port;

    const id = (await svc.call('POST', '/v1/transactions', {})).body.id as string;
    const enlisted = await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'crashing', url: `http://127.0.0.1:${port}/twopc`, prepare: 'held' });
    expect(enlisted.status).toBe(201);

    const commit = await svc.call('POST', `/v1/transactions/${id}/commit`);
    // The participant is down now: retries are refused. The outcome is unknown, never "aborted".
    expect({ status: commit.status, code: commit.body.code }).toEqual({ status: 503, code: 'outcome-unknown' });
    expect(commitsSeen).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    const meanwhile = await svc.call('GET', `/v1/transactions/${id}`);
    expect(meanwhile.body.state).not.toBe('aborted');
    expect(meanwhile.body.decision ?? null).toBeNull();

    // Second incarnation on the same port: the branch committed (its marker says so).
    participant = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ state: 'committed' }));
      });
    });
    await new Promise<void>((r) => participant!.listen(port, '127.0.0.1', r));

    await waitFor('the one-phase commit to complete', async () => (await svc.call('GET', `/v1/transactions/${id}`)).body.state === 'completed');
    const done = await svc.call('GET', `/v1/transactions/${id}`);
    expect(done.body).toMatchObject({ state: 'completed', decision: 'commit', branches: [{ state: 'committed' }] });
    const again = await svc.call('POST', `/v1/transactions/${id}/commit`);
    expect(again.status).toBe(200);
  });
});
