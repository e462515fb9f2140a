import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { STUB_OPS, type StubCounts, type StubFaults, type StubOp, type StubSpec } from './stub-protocol';

/** The path prefix the stubs serve the protocol under: the URL enlisted is `http://127.0.0.1:<port>/twopc`. */
export const STUB_BASE_PATH = '/twopc';
// SPEC §6: a `t` more than 5 minutes away is refused.
const SIGNATURE_TOLERANCE_MS = 5 * 60 * 1000;

function zeroCounts(name: string): StubCounts {
  return { name, calls: Object.fromEntries(STUB_OPS.map((op) => [op, 0])) as Record<StubOp, number>, answered: 0, delayed: 0, badSignatures: 0, accepted: 0, open: 0, maxOpen: 0 };
}

function opOf(method: string, path: string): StubOp {
  if (method === 'POST' && path === `${STUB_BASE_PATH}/prepare`) return 'prepare';
  if (method === 'POST' && path === `${STUB_BASE_PATH}/commit`) return 'commit';
  if (method === 'POST' && path === `${STUB_BASE_PATH}/rollback`) return 'rollback';
  if (method === 'GET' && path.startsWith(`${STUB_BASE_PATH}/branches/`)) return 'status';
  return 'other';
}

/** `twopc-signature: t=<ms>,v1=<hex HMAC-SHA256 of "<t>.<METHOD> <path>.<body>">` (SPEC §6), checked here without the SDK. */
function signatureOk(secret: string, header: string | undefined, method: string, path: string, body: string): boolean {
  const m = header === undefined ? null : /^t=(\d{1,16}),v1=([0-9a-f]{64})$/.exec(header.trim());
  if (!m || Math.abs(Date.now() - Number(m[1])) > SIGNATURE_TOLERANCE_MS) return false;
  const expected = createHmac('sha256', secret).update(`${m[1]}.${method} ${path}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(m[2], 'hex'));
}

/**
 * A participant service that votes yes and acknowledges everything at once,
 * keeping no branch state (a status call answers `unknown`), with fault
 * knobs: delay a share of calls, or accept and never answer. It counts
 * calls by op and the TCP connections the coordinator opens to it.
 */
export class StubParticipant {
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private faults: StubFaults;
  /** Since the last `takeSecond()`. */
  private second: StubCounts;
  private readonly total: StubCounts;
  port = 0;

  constructor(
    private readonly spec: StubSpec,
    private readonly secret: string,
  ) {
    this.faults = spec.faults;
    this.second = zeroCounts(spec.name);
    this.total = zeroCounts(spec.name);
    // requestTimeout 0: a never-answering stub must hold requests until the coordinator gives up, not node.
    this.server = http.createServer({ requestTimeout: 0 }, (req, res) => this.handle(req, res));
    // Longer than the coordinator's keep-alive, so the coordinator decides when an idle connection closes.
    this.server.keepAliveTimeout = 65_000;
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      this.count((c) => {
        c.accepted += 1;
      });
      this.total.open += 1;
      this.total.maxOpen = Math.max(this.total.maxOpen, this.total.open);
      socket.on('close', () => {
        this.sockets.delete(socket);
        this.total.open -= 1;
      });
    });
  }

  get name(): string {
    return this.spec.name;
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  setFaults(faults: StubFaults): void {
    this.faults = faults;
  }

  /** Counts of the second just ended (open/maxOpen: now, and the most since the start). */
  takeSecond(): StubCounts {
    const s = { ...this.second, open: this.total.open, maxOpen: this.total.maxOpen };
    this.second = zeroCounts(this.spec.name);
    return s;
  }

  totals(): StubCounts {
    return { ...this.total, calls: { ...this.total.calls } };
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private count(f: (c: StubCounts) => void): void {
    f(this.second);
    f(this.total);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const method = req.method ?? 'GET';
      const path = req.url ?? '/';
      const op = opOf(method, path.split('?')[0]);
      this.count((c) => {
        c.calls[op] += 1;
      });
      if (this.faults.neverAnswer) return;
      const body = Buffer.concat(chunks).toString('utf8');
      if (this.spec.verify && !signatureOk(this.secret, req.headers['twopc-signature'] as string | undefined, method, path, body)) {
        this.count((c) => {
          c.badSignatures += 1;
        });
        return this.answer(res, 401, { type: 'about:blank', title: 'bad signature', status: 401, code: 'unauthorized' });
      }
      const answer = (): void => {
        if (op === 'prepare') this.answer(res, 200, { vote: 'yes' });
        else if (op === 'commit') this.answer(res, 200, { state: 'committed' });
        else if (op === 'rollback') this.answer(res, 200, { state: 'rolled-back' });
        else if (op === 'status') this.answer(res, 200, { state: 'unknown' });
        else this.answer(res, 404, { type: 'about:blank', title: 'not found', status: 404, code: 'not-found' });
      };
      const f = this.faults;
      if (f.delayFraction > 0 && f.delayOps.includes(op) && Math.random() < f.delayFraction) {
        this.count((c) => {
          c.delayed += 1;
        });
        setTimeout(answer, f.delayMs);
      } else {
        answer();
      }
    });
  }

  private answer(res: http.ServerResponse, status: number, body: object): void {
    if (res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    this.count((c) => {
      c.answered += 1;
    });
  }
}
