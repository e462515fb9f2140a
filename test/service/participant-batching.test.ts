import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { v7 as uuidv7 } from 'uuid';
import type { BranchRef } from '../../coordinator/engine/ports/participant';
import { HttpParticipants } from '../../coordinator/participants/http/http-participants';
import { HTTP_PARTICIPANT_DEFAULTS } from '../../coordinator/participants/http/http-participant-options';
import { GROW_AFTER_BATCHES } from '../../coordinator/participants/http/participant-batcher';
import { buildGid } from '../../participant-sdk/src/gid';
import { verifySignature } from '../../participant-sdk/src/signature';
import { batchRequestSchema, type BatchCall } from '../../participant-sdk/src/wire';
import { SECRET } from './service-fixture';
import { ChaosProxy } from '../../chaos/chaos-proxy';

function branch(): BranchRef {
  const txId = uuidv7();
  return { txId, branchId: 1, gid: buildGid('twopc', txId, 1), participant: 'p' };
}

type BatchAnswer = (calls: BatchCall[], res: http.ServerResponse) => void;

/**
 * A participant speaking both forms, whose batch answers the test scripts:
 * every request is checked for its signature; per-call requests answer yes /
 * committed / rolled-back after `delayMs`.
 */
async function participantServer(batchAnswer: BatchAnswer, delayMs = 30, onBatch: (url: string) => void = () => undefined) {
  const seen: Array<{ path: string; calls: number }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (!verifySignature(SECRET, req.headers['twopc-signature'] as string, req.method!, req.url!, body).ok) return void res.writeHead(401).end();
      const path = req.url!.replace('/base', '').replace(/\?.*$/, '');
      if (path === '/batch') {
        const { calls } = batchRequestSchema.parse(JSON.parse(body));
        seen.push({ path, calls: calls.length });
        onBatch(req.url!);
        return void setTimeout(() => batchAnswer(calls, res), delayMs);
      }
      seen.push({ path, calls: 1 });
      const answer = path === '/prepare' ? { vote: 'yes' } : path === '/commit' ? { state: 'committed' } : { state: 'rolled-back' };
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer)), delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/base`,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const answerEach = (results: (call: BatchCall) => { status: number; body: unknown }): BatchAnswer => (calls, res) =>
  void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results: calls.map(results) }));

describe('batched calls to participant services (docs/protocol.md)', () => {
  let participants: HttpParticipants;
  let server: Awaited<ReturnType<typeof participantServer>> | undefined;

  beforeEach(() => {
    participants = new HttpParticipants({ ...HTTP_PARTICIPANT_DEFAULTS, secret: SECRET, prepareTimeoutMs: 1_000, phaseTwoTimeoutMs: 1_000 });
  });
  afterEach(async () => {
    await participants.close();
    await server?.close();
    server = undefined;
  });

  it('sends a lone call in the per-call form, and calls that queue behind it as one batch with one result each, in order', async () => {
    server = await participantServer(answerEach((c) => (c.op === 'prepare' && c.gid.endsWith('_1') && c.txId.endsWith('0') ? { status: 409, body: { vote: 'no', reason: 'refused' } } : { status: 200, body: { vote: 'yes' } })));
    participants.noteAccepts(server.url, ['batch', 'some-future-form']);
    const p = participants.forUrl('p', server.url);
    const branches = Array.from({ length: 12 }, branch);
    const votes = await Promise.all(branches.map((b) => p.prepare(b)));
    // The first went alone; the other eleven queued while it was in flight and left together.
    expect(server.seen).toEqual([{ path: '/prepare', calls: 1 }, { path: '/batch', calls: 11 }]);
    branches.forEach((b, i) => {
      const refused = i > 0 && b.txId.endsWith('0');
      expect(votes[i]).toEqual(refused ? { vote: 'no', reason: 'refused' } : { vote: 'yes' });
    });
  });

  it('keeps the per-call form for a participant that did not say it accepts batches', async () => {
    server = await participantServer(() => {
      throw new Error('no batch may reach a per-call participant');
    });
    participants.noteAccepts(server.url, undefined);
    participants.noteAccepts(server.url, ['something-else']);
    const p = participants.forUrl('p', server.url);
    await Promise.all(Array.from({ length: 8 }, branch).map((b) => p.commit(b)));
    expect(server.seen.every((s) => s.path === '/commit')).toBe(true);
    expect(server.seen).toHaveLength(8);
  });

  it('stops batching to a URL whose enlist no longer says it accepts batches', async () => {
    server = await participantServer(() => {
      throw new Error('no batch may reach a participant that stopped accepting them');
    });
    participants.noteAccepts(server.url, ['batch']);
    participants.noteAccepts(server.url, undefined);
    const p = participants.forUrl('p', server.url);
    await Promise.all(Array.from({ length: 8 }, branch).map((b) => p.prepare(b)));
    expect(server.seen.filter((s) => s.path === '/batch')).toEqual([]);
  });

  it('sends the calls of a batch answered 404 or 405 (no batch route: nothing ran) again one by one, then stops batching to that URL', async () => {
    for (const status of [404, 405]) {
      server = await participantServer((_calls, res) => void res.writeHead(status).end());
      participants.noteAccepts(server.url, ['batch']);
      const p = participants.forUrl('p', server.url);
      const votes = await Promise.all(Array.from({ length: 10 }, branch).map((b) => p.prepare(b)));
      expect(votes.every((v) => v.vote === 'yes')).toBe(true);
      expect(server.seen.filter((s) => s.path === '/batch')).toHaveLength(1);
      server.seen.length = 0;
      await Promise.all(Array.from({ length: 10 }, branch).map((b) => p.prepare(b)));
      expect(server.seen.every((s) => s.path === '/prepare')).toBe(true);
      await server.close();
    }
    server = undefined;
  });

  it('sends the calls of a batch answered 413 again one by one, and batches fewer calls after', async () => {
    let limit = 4;
    server = await participantServer((calls, res) => {
      if (calls.length > limit) return void res.writeHead(413).end();
      answerEach(() => ({ status: 200, body: { state: 'committed' } }))(calls, res);
    });
    participants.noteAccepts(server.url, ['batch']);
    const p = participants.forUrl('p', server.url);
    await Promise.all(Array.from({ length: 17 }, branch).map((b) => p.commit(b)));
    expect(server.seen.filter((s) => s.path === '/batch')).toEqual([{ path: '/batch', calls: 16 }]);
    expect(server.seen.filter((s) => s.path === '/commit')).toHaveLength(17);
    limit = 100;
    server.seen.length = 0;
    await Promise.all(Array.from({ length: 17 }, branch).map((b) => p.commit(b)));
    expect(Math.max(...server.seen.map((s) => s.calls))).toBe(8);
  });

  describe('after a 413, batches grow back (GROW_AFTER_BATCHES full batches accepted in a row, then twice as many calls)', () => {
    let limit: number;
    let p: ReturnType<HttpParticipants['forUrl']>;

    beforeEach(async () => {
      await participants.close();
      // A configured maximum of 16, so the way back up ends there.
      participants = new HttpParticipants({ ...HTTP_PARTICIPANT_DEFAULTS, secret: SECRET, prepareTimeoutMs: 1_000, phaseTwoTimeoutMs: 1_000, batchMaxCalls: 16 });
      limit = 4;
      server = await participantServer((calls, res) => {
        if (calls.length > limit) return void res.writeHead(413).end();
        answerEach(() => ({ status: 200, body: { state: 'committed' } }))(calls, res);
      });
      participants.noteAccepts(server.url, ['batch']);
      p = participants.forUrl('p', server.url);
    });

    /** `calls` commits at once (the first goes alone, the rest queue behind it): the sizes of the batches sent, and the calls sent alone. */
    async function round(calls: number): Promise<{ batches: number[]; alone: number }> {
      const before = server!.seen.length;
      // Every call acknowledged (a commit not acknowledged throws).
      await Promise.all(Array.from({ length: calls }, branch).map((b) => p.commit(b)));
      const seen = server!.seen.slice(before);
      return { batches: seen.filter((s) => s.path === '/batch').map((s) => s.calls), alone: seen.filter((s) => s.path === '/commit').length };
    }

    /** Rounds of 17 calls (two full batches of 8 each) until `batches` batches went; their sizes. */
    async function batchesOf8(batches: number): Promise<number[]> {
      const sizes: number[] = [];
      while (sizes.length < batches) sizes.push(...(await round(17)).batches);
      return sizes;
    }

    it('tries twice as many calls after a run accepted at the lowered cap, up to the configured maximum', async () => {
      // 16 refused (nothing ran): its calls went alone, and batches hold 8 from now on.
      expect(await round(17)).toEqual({ batches: [16], alone: 17 });
      limit = 100;
      expect(await batchesOf8(GROW_AFTER_BATCHES)).toEqual(Array(GROW_AFTER_BATCHES).fill(8));
      expect(await round(17)).toEqual({ batches: [16], alone: 1 });
      // At the configured maximum: never more, however many are accepted.
      for (let i = 0; i < GROW_AFTER_BATCHES; i += 1) expect(await round(33)).toEqual({ batches: [16, 16], alone: 1 });
    });

    it('grows back from a cap of one: calls sent alone at that cap count towards the run', async () => {
      limit = 1;
      // The batch of two behind the first call is refused: the cap is one, and every call goes alone.
      expect(await round(3)).toEqual({ batches: [2], alone: 3 });
      limit = 100;
      expect(await round(GROW_AFTER_BATCHES)).toEqual({ batches: [], alone: GROW_AFTER_BATCHES });
      // A run of them answered: batches of two are tried (and accepted) again.
      const next = await round(5);
      expect(next.batches.length).toBeGreaterThan(0);
      expect(next.batches.every((n) => n === 2)).toBe(true);
    });

    it('backs off again on a new 413 (its calls resent alone), and waits a longer run before the next try', async () => {
      limit = 8;
      expect(await round(17)).toEqual({ batches: [16], alone: 17 });
      expect(await batchesOf8(GROW_AFTER_BATCHES)).toEqual(Array(GROW_AFTER_BATCHES).fill(8));
      // The try at 16 is refused: each of its calls is sent alone (and answered), and batches hold 8 again.
      expect(await round(17)).toEqual({ batches: [16], alone: 17 });
      // The next try needs twice the run.
      expect(await batchesOf8(2 * GROW_AFTER_BATCHES)).toEqual(Array(2 * GROW_AFTER_BATCHES).fill(8));
      expect(await round(17)).toEqual({ batches: [16], alone: 17 });
      // Until the participant takes more: then a full batch at 16 is accepted and 16 stays.
      limit = 100;
      expect(await batchesOf8(4 * GROW_AFTER_BATCHES)).toEqual(Array(4 * GROW_AFTER_BATCHES).fill(8));
      expect(await round(17)).toEqual({ batches: [16], alone: 1 });
      expect(await round(17)).toEqual({ batches: [16], alone: 1 });
    });
  });

  it('takes a batch answer longer than one call\'s limit when it is within the limit times its calls', async () => {
    participants = new HttpParticipants({ ...HTTP_PARTICIPANT_DEFAULTS, secret: SECRET, maxAnswerBytes: 2_000 });
    server = await participantServer(answerEach(() => ({ status: 409, body: { vote: 'no', reason: 'r'.repeat(900) } })));
    participants.noteAccepts(server.url, ['batch']);
    const p = participants.forUrl('p', server.url);
    const votes = await Promise.all(Array.from({ length: 6 }, branch).map((b) => p.prepare(b)));
    expect(server.seen.map((s) => s.path)).toEqual(['/prepare', '/batch']);
    expect(votes.slice(1).every((v) => v.vote === 'no' && v.reason.length === 900)).toBe(true);
  });

  it('sends each batch with its budget, and takes no result that names another call than the one at its position', async () => {
    let budget: string | null = null;
    server = await participantServer((calls, res) => {
      const results = calls.map((c) => ({ status: 200, body: { vote: 'yes' }, op: c.op, gid: c.gid }));
      [results[0], results[1]] = [results[1], results[0]];
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results }));
    }, 30, (url) => (budget = new URL(url, 'http://x').searchParams.get('budgetMs')));
    participants.noteAccepts(server.url, ['batch']);
    const p = participants.forUrl('p', server.url);
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, branch).map((b) => p.prepare(b)));
    // 3/4 of what is left of the calls' deadline (1000 ms, less the time they waited in the queue).
    expect(Number(budget)).toBeLessThanOrEqual(750);
    expect(Number(budget)).toBeGreaterThan(600);
    expect(outcomes[0].status).toBe('fulfilled');
    for (const o of outcomes.slice(1)) expect(o).toMatchObject({ status: 'rejected', reason: { code: 'outcome-unknown', message: expect.stringMatching(/not in the calls' order/) } });
  });

  it('fails every call of a batch whose answer is cut mid-message, or is not one result per call, with outcome-unknown', async () => {
    let cut = true;
    server = await participantServer((calls, res) => {
      const text = JSON.stringify({ results: calls.map(() => ({ status: 200, body: { state: 'committed' } })) });
      if (cut) {
        // Headers and half the body, then the connection ends: a batch cut mid-message.
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.write(text.slice(0, text.length / 2));
        setTimeout(() => res.socket?.destroy(), 5);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results: calls.slice(1).map(() => ({ status: 200, body: { state: 'committed' } })) }));
    });
    participants.noteAccepts(server.url, ['batch']);
    const p = participants.forUrl('p', server.url);
    for (const mode of ['cut', 'short'] as const) {
      cut = mode === 'cut';
      server.seen.length = 0;
      const outcomes = await Promise.allSettled(Array.from({ length: 6 }, branch).map((b) => p.commit(b)));
      expect(server.seen.map((s) => s.path)).toEqual(['/commit', '/batch']);
      // The lone first call was answered; each call of the failed batch is unknown, none is taken as done.
      expect(outcomes[0].status).toBe('fulfilled');
      for (const o of outcomes.slice(1)) expect(o).toMatchObject({ status: 'rejected', reason: { code: 'outcome-unknown' } });
      for (const o of outcomes.slice(1)) expect(String((o as PromiseRejectedResult).reason.message)).not.toContain('127.0.0.1');
      for (const o of outcomes.slice(1)) expect((o as PromiseRejectedResult).reason.message).toMatch(/^participant p: POST \/commit \(batched\): /);
    }
  });

  it('a batch answer cut mid-message by the chaos proxy, after the participant ran the calls: each call unknown, then acknowledged when repeated', async () => {
    let proxy: ChaosProxy | undefined;
    let cutNextBatch = false;
    server = await participantServer(answerEach(() => ({ status: 200, body: { state: 'committed' } })), 30, () => {
      // The batch arrived whole: its answer, on the same kept-alive connection, is cut 20 bytes in.
      if (cutNextBatch) proxy!.setMode({ kind: 'cut', afterBytes: 20 });
    });
    const port = Number(new URL(server.url).port);
    proxy = await ChaosProxy.start('coordinator>p', { host: '127.0.0.1', port });
    try {
      const url = `${proxy.url}/base`;
      participants.noteAccepts(url, ['batch']);
      const p = participants.forUrl('p', url);
      await Promise.all(Array.from({ length: 4 }, branch).map((b) => p.commit(b)));
      cutNextBatch = true;
      const branches = Array.from({ length: 8 }, branch);
      const outcomes = await Promise.allSettled(branches.map((b) => p.commit(b)));
      expect(proxy.stats.cut).toBeGreaterThanOrEqual(1);
      expect(outcomes[0].status).toBe('fulfilled');
      for (const o of outcomes.slice(1)) expect(o).toMatchObject({ status: 'rejected', reason: { code: 'outcome-unknown' } });
      // Phase 2 repeats an unknown commit until acknowledged; the participant's commit is idempotent.
      cutNextBatch = false;
      proxy.setMode({ kind: 'pass' });
      await Promise.all(branches.slice(1).map((b) => p.commit(b)));
    } finally {
      await proxy.close();
    }
  });

  it('a batch that never answers fails each of its calls at the call deadline, and does not hold back the calls behind it', async () => {
    let hang = true;
    server = await participantServer((calls, res) => {
      if (hang) return; // never answers
      answerEach(() => ({ status: 200, body: { state: 'rolled-back' } }))(calls, res);
    }, 0);
    participants = new HttpParticipants({ ...HTTP_PARTICIPANT_DEFAULTS, secret: SECRET, phaseTwoTimeoutMs: 800, batchSlowAfterMs: 50 });
    participants.noteAccepts(server.url, ['batch']);
    const p = participants.forUrl('p', server.url);
    const first = [branch(), branch(), branch()].map((b) => p.rollback(b));
    await new Promise((r) => setTimeout(r, 100));
    hang = false;
    // Queued after a batch that hangs: sent once it has been in flight batchSlowAfterMs, answered long before its deadline.
    const started = Date.now();
    await Promise.all([branch(), branch()].map((b) => p.rollback(b)));
    expect(Date.now() - started).toBeLessThan(600);
    const settled = await Promise.allSettled(first);
    expect(settled[0].status).toBe('fulfilled');
    for (const o of settled.slice(1)) expect(o).toMatchObject({ status: 'rejected', reason: { code: 'outcome-unknown', message: expect.stringMatching(/no answer within 800 ms/) } });
  });

  it('fails a call still queued at its deadline, unsent, and counts the time queued against the deadline of a call sent late', async () => {
    const seen: number[] = [];
    server = await participantServer((calls, res) => {
      seen.push(calls.length);
      if (seen.length === 1) return; // the first batch never answers
      answerEach(() => ({ status: 200, body: { state: 'rolled-back' } }))(calls, res);
    }, 0);
    // Nothing stops holding back a batch in flight before the calls' deadline: calls behind it only queue.
    participants = new HttpParticipants({ ...HTTP_PARTICIPANT_DEFAULTS, secret: SECRET, phaseTwoTimeoutMs: 1_500, prepareTimeoutMs: 300, batchSlowAfterMs: 60_000 });
    participants.noteAccepts(server.url, ['batch']);
    const p = participants.forUrl('p', server.url);
    // The first goes alone; the two behind it leave as the batch that hangs.
    const [lone, ...hung] = [branch(), branch(), branch()].map((b) => p.rollback(b).catch((e) => e));
    await new Promise((r) => setTimeout(r, 50));
    // Prepares with a deadline (300 ms) that ends while the batch ahead (rollbacks, 1500 ms) is still in flight.
    const queued = [branch(), branch()].map((b) => p.prepare(b).catch((e) => e));
    const started = Date.now();
    const failed = await Promise.all(queued);
    expect(Date.now() - started).toBeLessThan(2_000);
    for (const e of failed) expect(e).toMatchObject({ code: 'outcome-unknown', message: expect.stringMatching(/no answer within 300 ms/) });
    await Promise.all([lone, ...hung]);
    // The queued calls were never sent: only the lone call and the batch that hung reached the participant.
    expect(server.seen.map((s) => s.path)).toEqual(['/rollback', '/batch']);
    expect(seen).toEqual([2]);
  });

  it('caps a batch answer at 256 KiB however many calls it holds (each call keeps its own limit alone)', async () => {
    server = await participantServer(answerEach(() => ({ status: 409, body: { vote: 'no', reason: 'r'.repeat(60 * 1024) } })));
    participants.noteAccepts(server.url, ['batch']);
    const p = participants.forUrl('p', server.url);
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, branch).map((b) => p.prepare(b)));
    expect(server.seen.map((s) => s.path)).toEqual(['/prepare', '/batch']);
    // Five results of 60 KiB: within 5 × 64 KiB, over the batch cap: no call's result is taken.
    for (const o of outcomes.slice(1)) expect(o).toMatchObject({ status: 'rejected', reason: { code: 'outcome-unknown' } });
  });

  it('sends a call that waited out most of its deadline alone, so it cannot cut the batch budget of fresh calls', async () => {
    participants = new HttpParticipants({ ...HTTP_PARTICIPANT_DEFAULTS, secret: SECRET, prepareTimeoutMs: 1_000, phaseTwoTimeoutMs: 1_000, batchSlowAfterMs: 5_000 });
    const seen: string[] = [];
    const budgets: number[] = [];
    let prepares = 0;
    const rig = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const url = new URL(req.url!, 'http://x');
        if (url.pathname.endsWith('/batch')) {
          const { calls } = batchRequestSchema.parse(JSON.parse(body));
          seen.push(`/batch:${calls.length}`);
          budgets.push(Number(url.searchParams.get('budgetMs')));
          return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results: calls.map(() => ({ status: 200, body: { vote: 'yes' } })) }));
        }
        seen.push('/prepare:1');
        // The first call holds the link 600 ms; later lone calls are answered at once.
        setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ vote: 'yes' })), prepares++ === 0 ? 600 : 0);
      });
    });
    await new Promise<void>((r) => rig.listen(0, '127.0.0.1', () => r()));
    server = { url: `http://127.0.0.1:${(rig.address() as AddressInfo).port}/base`, seen: [], close: () => new Promise<void>((r) => (rig.closeAllConnections(), rig.close(() => r()))) };
    participants.noteAccepts(server.url, ['batch']);
    const p = participants.forUrl('p', server.url);
    const first = p.prepare(branch()); // alone, answered after 600 ms
    const late = p.prepare(branch()); // queued at once: about 400 ms left when the first answers
    await new Promise((r) => setTimeout(r, 450));
    const fresh = [p.prepare(branch()), p.prepare(branch())]; // queued 150 ms before it answers
    const votes = await Promise.all([first, late, ...fresh]);
    expect(votes.every((v) => v.vote === 'yes')).toBe(true);
    expect(seen.sort()).toEqual(['/batch:2', '/prepare:1', '/prepare:1']);
    // The fresh calls' budget: 3/4 of their ~850 ms left, not of the late call's ~400.
    expect(budgets).toHaveLength(1);
    expect(budgets[0]).toBeGreaterThan(450);
  });

  it('a one-phase commit sent alone after its batch was refused (404) and then not connected is outcome-unknown, not aborted (a retrying proxy may have run the batch)', async () => {
    let batches = 0;
    const closing = await participantServer((_calls, res) => {
      batches += 1;
      res.writeHead(404).end(() => void closing.close());
    });
    server = closing;
    participants.noteAccepts(server.url, ['batch']);
    const p = participants.forUrl('p', server.url);
    const outcomes = await Promise.allSettled(Array.from({ length: 4 }, branch).map((b) => p.commit(b, { onePhase: true })));
    expect(batches).toBe(1);
    expect(outcomes[0].status).toBe('fulfilled');
    for (const o of outcomes.slice(1)) expect(o).toMatchObject({ status: 'rejected', reason: { code: 'outcome-unknown' } });
  });
});
