import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoordinatorClient, mintCarriedTxId, signRegistration } from '../../participant-sdk/src';

/**
 * The client's carried abort: `abort(id, { registrations })` sends them (and
 * the reason); a coordinator that takes no registrations on an abort (older
 * than carried abort: its strict body refuses the field, 400 naming
 * `registrations`) makes it fail clearly, saying nothing was aborted, never
 * fall back to a plain abort that would leave the branches' locks held in silence.
 */
describe('carried abort: the client', () => {
  let server: Server;
  let url: string;
  let answer: { status: number; body: unknown };
  const seen: Array<{ line: string; body: string }> = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ line: `${req.method} ${req.url}`, body });
        res.writeHead(answer.status, { 'content-type': answer.status >= 400 ? 'application/problem+json' : 'application/json' }).end(JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    seen.length = 0;
  });

  const registrationFor = (id: string) => signRegistration('secret', id, { participant: 'orders', url: 'http://orders:8080/twopc', branchId: 5, gid: `twopc_${id.replace(/-/g, '')}_5`, accepts: ['batch'] });

  it('sends the registrations and the reason with the abort', async () => {
    const id = mintCarriedTxId();
    answer = { status: 200, body: { id, state: 'aborted' } };
    const client = new CoordinatorClient({ url });
    try {
      await expect(client.abort(id, { registrations: [registrationFor(id)], reason: 'cancelled' })).resolves.toEqual({ id, state: 'aborted' });
      await expect(client.abort(id)).resolves.toEqual({ id, state: 'aborted' });
    } finally {
      await client.close();
    }
    expect(seen.map((s) => s.line)).toEqual([`POST /v1/transactions/${id}/abort`, `POST /v1/transactions/${id}/abort`]);
    expect(JSON.parse(seen[0].body)).toEqual({ reason: 'cancelled', registrations: [registrationFor(id)] });
    // Without options, no body at all, as before.
    expect(seen[1].body).toBe('');
  });

  it('fails clearly against a coordinator older than carried abort (400 naming registrations), with one call and no plain abort after it', async () => {
    const id = mintCarriedTxId();
    answer = { status: 400, body: { type: 'about:blank', title: 'Bad Request', status: 400, code: 'invalid-input', detail: 'registrations: unknown field', field: 'registrations' } };
    const client = new CoordinatorClient({ url });
    try {
      const refused = client.abort(id, { registrations: [registrationFor(id)] });
      await expect(refused).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'registrations' } });
      await expect(refused).rejects.toThrow(/nothing was aborted, and the services' branches stay held until their timeout/);
    } finally {
      await client.close();
    }
    expect(seen).toHaveLength(1);
  });
});
