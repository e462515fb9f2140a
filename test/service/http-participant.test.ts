import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { v7 as uuidv7 } from 'uuid';
import { TransactionAbortedError, TwopcError } from '../../coordinator/engine/ports/protocol';
import { buildGid } from '../../participant-sdk/src/gid';
import { HttpParticipant } from '../../coordinator/participants/http/http-participant';
import { HttpParticipants } from '../../coordinator/participants/http/http-participants';
import { HTTP_PARTICIPANT_DEFAULTS } from '../../coordinator/participants/http/http-participant-options';
import type { ParticipantPools } from '../../coordinator/participants/http/participant-pools';
import { checkParticipantUrl } from '../../coordinator/participants/http/participant-url';
import type { BranchRef } from '../../coordinator/engine/ports/participant';
import { verifySignature } from '../../participant-sdk/src/signature';
import { freePort } from '../../coordinator/demo/free-port';
import { SECRET } from './service-fixture';
import { TestParticipant } from './test-participant';

function branch(branchId = 1): BranchRef {
  const txId = uuidv7();
  return { txId, branchId, gid: buildGid('twopc', txId, branchId), participant: 'p' };
}

/** A server that answers every call with what `answer` says, recording what it got. */
async function rawServer(answer: (req: http.IncomingMessage, body: string) => { status: number; body: string } | 'hang' | 'reset') {
  const seen: Array<{ method?: string; url?: string; headers: http.IncomingHttpHeaders; body: string }> = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      const a = answer(req, body);
      if (a === 'hang') return;
      if (a === 'reset') return req.socket.destroy();
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
    });
  });
  server.on('connection', () => (connections += 1));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/base`,
    seen,
    connections: () => connections,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('HTTP participant adapter (wire protocol, SPEC §6)', () => {
  let participants: HttpParticipants;
  let tp: TestParticipant;

  beforeAll(async () => {
    tp = await new TestParticipant(SECRET).start();
  });
  afterAll(async () => {
    await tp.stop();
  });
  beforeEach(() => {
    participants = new HttpParticipants({ ...HTTP_PARTICIPANT_DEFAULTS, secret: SECRET, prepareTimeoutMs: 300, phaseTwoTimeoutMs: 300, statusTimeoutMs: 300, connectTimeoutMs: 300, maxAnswerBytes: 1024 });
    tp.vote = () => ({ vote: 'yes' });
    tp.behaviour = () => 'normal';
    tp.onePhaseFails = () => undefined;
  });
  afterEach(async () => {
    await participants.close();
  });

  it('prepare, commit, rollback and status follow the protocol; every call is signed and validated by the participant', async () => {
    const p = participants.forUrl('p', tp.url);
    const b1 = branch(1);
    await expect(p.prepare(b1)).resolves.toEqual({ vote: 'yes' });
    await expect(p.status!(b1)).resolves.toBe('prepared');
    await p.commit(b1);
    await expect(p.status!(b1)).resolves.toBe('committed');
    const b2 = branch(2);
    tp.vote = () => ({ vote: 'no', reason: 'check constraint' });
    await expect(p.prepare(b2)).resolves.toEqual({ vote: 'no', reason: 'check constraint' });
    await p.rollback(b2);
    tp.vote = () => ({ vote: 'read-only' });
    await expect(p.prepare(branch(3))).resolves.toEqual({ vote: 'read-only' });
    await expect(p.status!(branch(4))).resolves.toBe('unknown');
    expect(tp.calls.length).toBeGreaterThanOrEqual(8);
    expect(tp.calls.every((c) => c.signature === 'ok')).toBe(true);
    // One adapter per (name, url).
    expect(participants.forUrl('p', tp.url)).toBe(p);
  });

  it('the signature covers method, path (with the base path) and exact body; the transaction header is sent', async () => {
    const server = await rawServer(() => ({ status: 200, body: '{"vote":"yes"}' }));
    try {
      const b = branch();
      await participants.forUrl('p', server.url).prepare(b);
      const [call] = server.seen;
      expect(call.url).toBe('/base/prepare');
      expect(JSON.parse(call.body)).toEqual({ txId: b.txId, branchId: 1, gid: b.gid });
      expect(verifySignature(SECRET, call.headers['twopc-signature'] as string, 'POST', '/base/prepare', call.body)).toEqual({ ok: true });
      expect(verifySignature('other-secret-0123456789', call.headers['twopc-signature'] as string, 'POST', '/base/prepare', call.body)).toEqual({ ok: false, reason: 'mismatch' });
      expect(call.headers['twopc-transaction']).toBe(b.txId);
    } finally {
      await server.close();
    }
  });

  it('one-phase commit: 409 rolled-back → TransactionAbortedError; a prepared branch answering 409 rolled-back, or a heuristic-hazard problem → heuristic hazard', async () => {
    const p = participants.forUrl('p', tp.url);
    tp.onePhaseFails = () => 'serialization failure';
    const error = await p.commit(branch(), { onePhase: true }).catch((e) => e);
    expect(error).toBeInstanceOf(TransactionAbortedError);
    expect(error.reason).toMatchObject({ cause: 'vote-no', participant: 'p', message: 'serialization failure' });

    const server = await rawServer(() => ({ status: 409, body: '{"state":"rolled-back","reason":"gone"}' }));
    try {
      await expect(participants.forUrl('p', server.url).commit(branch())).rejects.toMatchObject({ code: 'heuristic-hazard' });
    } finally {
      await server.close();
    }
    // A participant that says so with a problem answer (the SDK does, on a rollback of a committed branch).
    const hazard = await rawServer(() => ({ status: 409, body: JSON.stringify({ type: 'urn:twopc:problem:heuristic-hazard', title: 'heuristic-hazard', status: 409, code: 'heuristic-hazard', detail: 'the branch is committed' }) }));
    try {
      await expect(participants.forUrl('p', hazard.url).rollback(branch())).rejects.toMatchObject({ code: 'heuristic-hazard', message: expect.stringMatching(/the branch is committed/) });
      await expect(participants.forUrl('p', hazard.url).commit(branch())).rejects.toMatchObject({ code: 'heuristic-hazard' });
    } finally {
      await hazard.close();
    }
  });

  it('anything but a protocol answer is outcome-unknown: 5xx, invalid bodies, oversize answers, timeouts, resets', async () => {
    const answers: Record<string, { status: number; body: string } | 'hang' | 'reset'> = {
      '5xx': { status: 500, body: '{"vote":"yes"}' },
      'not json': { status: 200, body: 'yes' },
      'wrong shape': { status: 200, body: '{"vote":"maybe"}' },
      'no with 200': { status: 200, body: '{"vote":"no","reason":"x"}' },
      'yes with 409': { status: 409, body: '{"vote":"yes"}' },
      redirect: { status: 307, body: '' },
      oversize: { status: 200, body: JSON.stringify({ vote: 'yes', pad: 'x'.repeat(4096) }) },
      hang: 'hang',
      reset: 'reset',
    };
    for (const [name, answer] of Object.entries(answers)) {
      const server = await rawServer(() => answer);
      try {
        const p = participants.forUrl('p', server.url);
        const prepare = await p.prepare(branch()).catch((e) => e);
        expect([name, prepare instanceof TwopcError && prepare.code]).toEqual([name, 'outcome-unknown']);
        const commit = await p.commit(branch()).catch((e) => e);
        expect([name, commit instanceof TwopcError && commit.code]).toEqual([name, 'outcome-unknown']);
        const rollback = await p.rollback(branch()).catch((e) => e);
        expect([name, rollback instanceof TwopcError && rollback.code]).toEqual([name, 'outcome-unknown']);
        if (name === 'hang') expect(prepare.message).toMatch(/no answer within 300 ms/);
      } finally {
        await server.close();
      }
    }
  });

  it('the call deadline covers a body that trickles in (each byte within the body timeout, the whole past it)', async () => {
    const timers: NodeJS.Timeout[] = [];
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '400' });
        res.write('{"vote":"yes","pad":"');
        const drip = setInterval(() => res.write('x'), 50);
        timers.push(drip);
        res.on('close', () => clearInterval(drip));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const started = Date.now();
      const prepare = await participants.forUrl('p', `http://127.0.0.1:${(server.address() as AddressInfo).port}/base`).prepare(branch()).catch((e) => e);
      expect(prepare).toBeInstanceOf(TwopcError);
      expect(prepare).toMatchObject({ code: 'outcome-unknown', message: expect.stringMatching(/no answer within 300 ms/) });
      expect(Date.now() - started).toBeLessThan(1_500);
    } finally {
      for (const t of timers) clearInterval(t);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('a one-phase commit that never reached the participant (connection refused) did not commit: aborted; a two-phase one is unknown', async () => {
    const url = `http://127.0.0.1:${await freePort()}/p`;
    const p = participants.forUrl('p', url);
    const onePhase = await p.commit(branch(), { onePhase: true }).catch((e) => e);
    expect(onePhase).toBeInstanceOf(TransactionAbortedError);
    expect(onePhase.reason.message).toMatch(/unreachable.*ECONNREFUSED/);
    await expect(p.commit(branch())).rejects.toMatchObject({ code: 'outcome-unknown' });
    await expect(p.prepare(branch())).rejects.toMatchObject({ code: 'outcome-unknown' });
  });

  it('only a failure to connect proves a one-phase commit never reached the participant; the same codes once the request went out leave it unknown', async () => {
    const failing = (error: unknown) => new HttpParticipant('p', 'http://127.0.0.1:9/p', { send: () => Promise.reject(error) } as unknown as ParticipantPools, { ...HTTP_PARTICIPANT_DEFAULTS, secret: SECRET });
    const sys = (code: string, syscall: string) => Object.assign(new Error(`${syscall} ${code}`), { code, syscall });
    const aggregate = (...errors: Error[]) => Object.assign(new AggregateError(errors), { code: (errors[0] as { code?: string }).code });
    const outcome = async (error: unknown) => {
      const e = await failing(error).commit(branch(), { onePhase: true }).catch((x) => x);
      return e instanceof TransactionAbortedError ? 'aborted' : e instanceof TwopcError ? e.code : String(e);
    };
    const definite = {
      'connect ECONNREFUSED': sys('ECONNREFUSED', 'connect'),
      'connect EHOSTUNREACH': sys('EHOSTUNREACH', 'connect'),
      'getaddrinfo ENOTFOUND': sys('ENOTFOUND', 'getaddrinfo'),
      'undici connect timeout': Object.assign(new Error('Connect Timeout Error'), { code: 'UND_ERR_CONNECT_TIMEOUT' }),
      'every address refused (happy eyeballs)': aggregate(sys('ECONNREFUSED', 'connect'), sys('ENETUNREACH', 'connect')),
    };
    const unknown = {
      'read EHOSTUNREACH (after the request was written)': sys('EHOSTUNREACH', 'read'),
      'read ECONNRESET': sys('ECONNRESET', 'read'),
      'write EPIPE': sys('EPIPE', 'write'),
      'ECONNREFUSED without its syscall': Object.assign(new Error('refused?'), { code: 'ECONNREFUSED' }),
      'one address refused, another reset': aggregate(sys('ECONNREFUSED', 'connect'), sys('ECONNRESET', 'read')),
      'undici socket error over a reset': Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET', cause: sys('ECONNRESET', 'read') }),
      'no code at all': new Error('boom'),
    };
    for (const [name, error] of Object.entries(definite)) expect([name, await outcome(error)]).toEqual([name, 'aborted']);
    for (const [name, error] of Object.entries(unknown)) expect([name, await outcome(error)]).toEqual([name, 'outcome-unknown']);

    // And on real sockets: the participant got the one-phase COMMIT, then the connection was cut.
    const server = await rawServer(() => 'reset');
    try {
      await expect(participants.forUrl('p', server.url).commit(branch(), { onePhase: true })).rejects.toMatchObject({ code: 'outcome-unknown' });
      expect(server.seen).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  it('names no participant address in the messages that reach API clients, whatever form the transport error names it in', async () => {
    const failing = (error: unknown) => new HttpParticipant('p', 'http://127.0.0.1:9/p', { send: () => Promise.reject(error) } as unknown as ParticipantPools, { ...HTTP_PARTICIPANT_DEFAULTS, secret: SECRET });
    const sys = (message: string, code: string, syscall: string) => Object.assign(new Error(message), { code, syscall });
    const forms: Array<[string, Error, string[]]> = [
      ['IPv4', sys('connect ECONNREFUSED 10.0.0.7:4001', 'ECONNREFUSED', 'connect'), ['10.0.0.7']],
      ['IPv6 in brackets', sys('connect ECONNREFUSED [fd00::7]:4001', 'ECONNREFUSED', 'connect'), ['fd00']],
      ['IPv6 without brackets', sys('connect ECONNREFUSED fd00::7:4001', 'ECONNREFUSED', 'connect'), ['fd00', '::7']],
      ['IPv6 loopback without brackets', sys('connect ECONNREFUSED ::1:4001', 'ECONNREFUSED', 'connect'), ['::1']],
      ['IPv6 with a zone', sys('connect EHOSTUNREACH fe80::1%eth0:4001', 'EHOSTUNREACH', 'connect'), ['fe80', 'eth0']],
      ['IPv6 in full', sys('connect ECONNREFUSED 2001:db8:0:0:0:0:0:7:4001', 'ECONNREFUSED', 'connect'), ['2001:db8']],
      ['name lookup', sys('getaddrinfo ENOTFOUND payments.internal', 'ENOTFOUND', 'getaddrinfo'), ['payments.internal']],
      ['undici connect timeout', Object.assign(new Error('Connect Timeout Error (attempted address: payments.internal:4001, timeout: 5000ms)'), { code: 'UND_ERR_CONNECT_TIMEOUT' }), ['payments.internal', '4001']],
      ['TLS hostname mismatch', Object.assign(new Error("Hostname/IP does not match certificate's altnames: Host: payments.internal. is not in the cert's altnames: DNS:pay.example.com"), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }), ['payments.internal', 'pay.example.com']],
      ['TLS IP mismatch', Object.assign(new Error("Hostname/IP does not match certificate's altnames: IP: 10.0.0.7 is not in the cert's list: "), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }), ['10.0.0.7']],
      ['a host and port', sys('connect ETIMEDOUT payments.internal:4001', 'ETIMEDOUT', 'connect'), ['payments.internal']],
      ['a URL', new Error('request to http://payments.internal:4001/twopc/prepare failed'), ['payments.internal', '/twopc']],
    ];
    for (const [name, error, secrets] of forms) {
      const prepare = await failing(error).prepare(branch()).catch((e) => e);
      const onePhase = await failing(error).commit(branch(), { onePhase: true }).catch((e) => e);
      for (const message of [prepare.message, onePhase instanceof TransactionAbortedError ? onePhase.reason.message : onePhase.message]) {
        expect([name, message]).toEqual([name, expect.stringMatching(/participant/)]);
        for (const secret of secrets) expect([name, message.includes(secret)]).toEqual([name, false]);
      }
    }
  });

  it('keeps connections alive per origin', async () => {
    const server = await rawServer(() => ({ status: 200, body: '{"state":"rolled-back"}' }));
    try {
      const p = participants.forUrl('p', server.url);
      for (let i = 0; i < 20; i += 1) await p.rollback(branch());
      // (undici may open a second connection while the first is still being released.)
      expect(server.connections()).toBeLessThanOrEqual(2);
      // Another base path at the same origin shares the pool.
      await Promise.all(Array.from({ length: 10 }, () => participants.forUrl('q', `${server.url}/other`).rollback(branch())));
      expect(server.seen).toHaveLength(30);
      expect(server.connections()).toBeLessThanOrEqual(12);
    } finally {
      await server.close();
    }
  });

  it('a URL that no longer parses (an old log) fails its calls, never the factory', async () => {
    const p = participants.forUrl('p', 'not a url');
    await expect(p.rollback(branch())).rejects.toMatchObject({ code: 'outcome-unknown' });
  });

  it('checkParticipantUrl: http(s) only, no credentials, query or fragment; allow-list prefixes on segment boundaries', () => {
    expect(checkParticipantUrl('http://127.0.0.1:4001/twopc/', [])).toBe('http://127.0.0.1:4001/twopc');
    expect(checkParticipantUrl('https://pay.internal', [])).toBe('https://pay.internal');
    for (const bad of ['ftp://x/y', 'file:///etc/passwd', 'http://u:p@h/x', 'http://h/x?y=1', 'http://h/x#f', 'javascript:alert(1)', '//h/x', 'h/x']) {
      expect(() => checkParticipantUrl(bad, [])).toThrow(expect.objectContaining({ code: 'invalid-input', details: { field: 'url' } }));
    }
    const allow = ['https://pay.internal/twopc', 'http://10.0.0.5:4001'];
    expect(checkParticipantUrl('https://pay.internal/twopc/a', allow)).toBe('https://pay.internal/twopc/a');
    expect(checkParticipantUrl('http://10.0.0.5:4001/anything', allow)).toBe('http://10.0.0.5:4001/anything');
    for (const bad of ['https://pay.internal/twopcx', 'https://pay.internal/other', 'https://pay.internal.evil/twopc', 'http://pay.internal/twopc', 'http://10.0.0.5:4002/', 'https://pay.internal/twopc/../admin']) {
      expect(() => checkParticipantUrl(bad, allow)).toThrow(expect.objectContaining({ code: 'invalid-input' }));
    }
  });
});
