import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { get } from 'node:http';
import { CoordinatorClient, mintCarriedTxId, registrationFrom, registrationHeaderValue, registrationSigned, signRegistration } from '../../participant-sdk/src';
import { txIdOwner } from '../../coordinator/engine/ports/owned-tx-id';

/**
 * The client's side of the carried-registration negotiation: it uses carried
 * registration only when the coordinator offers it at GET /v1/capabilities;
 * an older coordinator (no such route: 404) or one that offers nothing gets
 * today's begin.
 */
describe('carried registration: the capability the client reads', () => {
  let server: Server;
  let url: string;
  let capabilities: { status: number; body: unknown };
  const seen: string[] = [];
  const bodies: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => bodies.push(body));
      const answer = req.url === '/v1/capabilities' ? capabilities : { status: 201, body: { id: '0190e6b2-6f1e-7c5a-8b4e-1234567890ab', state: 'active', expiresAt: new Date().toISOString() } };
      res.writeHead(answer.status, { 'content-type': answer.status >= 400 ? 'application/problem+json' : 'application/json' }).end(JSON.stringify(answer.body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    seen.length = 0;
    bodies.length = 0;
  });

  it('begins at an older coordinator that has no capabilities route (404), and asks it only once', async () => {
    capabilities = { status: 404, body: { type: 'about:blank', title: 'Not Found', status: 404, code: 'route-not-found', detail: 'no route GET /v1/capabilities' } };
    const client = new CoordinatorClient({ url });
    try {
      await expect(client.open({ carried: true })).resolves.toEqual({ id: '0190e6b2-6f1e-7c5a-8b4e-1234567890ab', carried: false });
      await client.open({ carried: true });
      expect(seen).toEqual(['GET /v1/capabilities', 'POST /v1/transactions', 'POST /v1/transactions']);
    } finally {
      await client.close();
    }
  });

  it('begins when the coordinator offers nothing, and mints the id with no call when it offers carried registration', async () => {
    capabilities = { status: 200, body: {} };
    const off = new CoordinatorClient({ url });
    const on = new CoordinatorClient({ url });
    try {
      await expect(off.open({ carried: true })).resolves.toMatchObject({ carried: false });
      capabilities = { status: 200, body: { carriedRegistration: { gidPrefix: 'twopc', timeoutMs: 30_000 } } };
      seen.length = 0;
      const tx = await on.open({ carried: true });
      expect(tx.carried).toBe(true);
      expect(seen).toEqual(['GET /v1/capabilities']);
      // A UUID v7 of this clock without the coordinators' owner tag.
      expect(tx.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(txIdOwner(tx.id)).toBeUndefined();
      // Without `carried`, the client begins as before.
      await expect(on.open()).resolves.toMatchObject({ carried: false });
    } finally {
      await Promise.all([off.close(), on.close()]);
    }
  });

  it('begins, keeping them, when timeoutMs or metadata is asked for: a carried transaction has neither', async () => {
    capabilities = { status: 200, body: { carriedRegistration: { gidPrefix: 'twopc', timeoutMs: 30_000 } } };
    const client = new CoordinatorClient({ url });
    try {
      await expect(client.open({ carried: true, timeoutMs: 5_000 })).resolves.toMatchObject({ carried: false });
      await expect(client.open({ carried: true, metadata: { order: 7 } })).resolves.toMatchObject({ carried: false });
      await expect(client.open({ carried: true })).resolves.toMatchObject({ carried: true });
      expect(seen).toEqual(['POST /v1/transactions', 'POST /v1/transactions', 'GET /v1/capabilities']);
      await new Promise((r) => setImmediate(r));
      expect(bodies.filter(Boolean).map((b) => JSON.parse(b))).toEqual([{ timeoutMs: 5_000 }, { metadata: { order: 7 } }]);
    } finally {
      await client.close();
    }
  });

  it('signs a registration for one transaction only, over every field', () => {
    const id = mintCarriedTxId();
    const r = signRegistration('secret', id, { participant: 'a', url: 'http://a/twopc', branchId: 3, gid: `twopc_${id.replace(/-/g, '')}_3`, accepts: ['batch'] });
    expect(registrationSigned('secret', id, r)).toBe(true);
    expect(registrationSigned('other', id, r)).toBe(false);
    expect(registrationSigned('secret', mintCarriedTxId(), r)).toBe(false);
    for (const change of [{ url: 'http://b/twopc' }, { participant: 'b' }, { branchId: 4 }, { accepts: [] }]) expect(registrationSigned('secret', id, { ...r, ...change })).toBe(false);
    // Exactly one signature: a list of them (as a header sent twice would join) is not one.
    for (const sig of [`${r.sig},${r.sig}`, `${r.sig}, `, ` ${r.sig}`, `${r.sig}\n`]) expect(registrationSigned('secret', id, { ...r, sig })).toBe(false);
  });

  it('reads exactly one registration from an answer: two headers joined into one value, or a list, are refused', async () => {
    const id = mintCarriedTxId();
    const value = registrationHeaderValue(signRegistration('secret', id, { participant: 'a', url: 'http://a/twopc', branchId: 3, gid: `twopc_${id.replace(/-/g, '')}_3` }));
    expect(registrationFrom({ headers: { 'twopc-registration': value } })).toMatchObject({ participant: 'a', branchId: 3 });
    expect(registrationFrom({ headers: {} })).toBeUndefined();
    // A service (or a proxy) that answers the header twice: Node and fetch join the values with ", ".
    const twice = createServer((req, res) => res.setHeader('twopc-registration', [value, req.url === '/both' ? value : '']).end());
    await new Promise<void>((resolve) => twice.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(twice.address() as AddressInfo).port}`;
    try {
      for (const path of ['/both', '/empty']) {
        const fetched = await fetch(`${base}${path}`);
        expect(() => registrationFrom(fetched)).toThrow(expect.objectContaining({ code: 'invalid-input' }));
        const incoming = await new Promise<import('node:http').IncomingMessage>((resolve) => get(`${base}${path}`, resolve));
        incoming.resume();
        expect(() => registrationFrom(incoming)).toThrow(expect.objectContaining({ code: 'invalid-input' }));
      }
    } finally {
      await new Promise<void>((resolve) => twice.close(() => resolve()));
    }
    for (const bad of [[value, value], [], ` ${value}`, `${value}==`, `${value},`]) {
      expect(() => registrationFrom({ headers: { 'twopc-registration': bad } })).toThrow(expect.objectContaining({ code: 'invalid-input' }));
    }
  });
});
