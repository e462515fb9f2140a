import type { Participant } from '../../coordinator/engine/ports/participant';
import { freePort } from '../../coordinator/demo/free-port';
import { startTestService, TestService } from './service-fixture';

/**
 * A one-phase commit to a participant service that refused the connection:
 * nothing reached it, so nothing committed. The commit answers 409 with the
 * reason (through an abort decision), not 503 outcome-unknown; the one-phase
 * COMMIT is not asked again.
 */
describe('one-phase commit to a participant that refused the connection', () => {
  let svc: TestService;
  const commits: Array<{ gid: string; onePhase: boolean }> = [];

  beforeAll(async () => {
    svc = await startTestService({}, {}, {
      extensions: () => ({
        wrapParticipant: (participant: Participant): Participant =>
          new Proxy(participant, {
            get(target, key, receiver) {
              if (key !== 'commit') return Reflect.get(target, key, receiver);
              return (branch: Parameters<Participant['commit']>[0], options?: { onePhase?: boolean }) => {
                commits.push({ gid: branch.gid, onePhase: options?.onePhase === true });
                return target.commit(branch, options);
              };
            },
          }),
      }),
    });
  });

  afterAll(async () => {
    await svc?.close();
  });

  it('answers 409 transaction-aborted with the reason; the transaction is aborted through the register; the COMMIT was sent once', async () => {
    const id = (await svc.call('POST', '/v1/transactions', {})).body.id as string;
    const url = `http://127.0.0.1:${await freePort()}/twopc`;
    const enlisted = await svc.call('POST', `/v1/transactions/${id}/branches`, { participant: 'closed', url, prepare: 'held' });
    expect(enlisted.status).toBe(201);

    const commit = await svc.call('POST', `/v1/transactions/${id}/commit`);
    expect({ status: commit.status, code: commit.body.code }).toEqual({ status: 409, code: 'transaction-aborted' });
    expect(commit.body).toMatchObject({ state: 'aborted', reason: { cause: 'vote-no', participant: 'closed', branchId: 1, message: expect.stringMatching(/unreachable.*ECONNREFUSED/) } });
    expect(commits).toEqual([{ gid: enlisted.body.gid, onePhase: true }]);

    // Decided abort in the log (the register), the same reason; asking again gives the same answer.
    const status = await svc.call('GET', `/v1/transactions/${id}`);
    expect(status.body).toMatchObject({ state: 'aborted', decision: 'abort', reason: { cause: 'vote-no', participant: 'closed' } });
    const again = await svc.call('POST', `/v1/transactions/${id}/commit`);
    expect({ status: again.status, code: again.body.code }).toEqual({ status: 409, code: 'transaction-aborted' });
    expect(commits).toHaveLength(1);
  });
});
