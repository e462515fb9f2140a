import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ContractCheck } from './contract-check';

// Per connection, not end to end (RFC 9110 §7.6.1): the proxy has its own connections on each side.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

/**
 * A reverse proxy in front of a coordinator that hands every answer to a
 * ContractCheck: for clients in other processes (the `twopc` CLI, participant
 * services), which are pointed at `url` instead of the coordinator. Answers
 * pass through unchanged (status, headers, body), so the suites see what they
 * saw before. When the coordinator cannot be reached the client's connection
 * is cut without an answer, so the client sees a transport failure, not an
 * answer the coordinator never gave.
 */
export class ContractProxy {
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async start(upstream: string, check: ContractCheck): Promise<ContractProxy> {
    const target = new URL(upstream);
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const headers = withoutHopByHop(req.headers);
        headers.host = target.host;
        if (body.length > 0 || req.headers['content-length'] !== undefined) headers['content-length'] = String(body.length);
        // A connection per request (agent: false): a kept-alive one that the coordinator closes as it is
        // reused would fail a request the coordinator never saw, and the proxy must not retry a POST.
        const forward = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: false }, (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (d: Buffer) => parts.push(d));
          answer.on('end', () => {
            const text = Buffer.concat(parts);
            // Checked before the client has the answer: a test's next step (its afterEach) sees the verdict.
            const contentType = answer.headers['content-type'];
            check.record({ method: req.method ?? 'GET', target: req.url ?? '/', status: answer.statusCode ?? 0, ...(contentType ? { contentType } : {}), body: text.toString('utf8') });
            res.writeHead(answer.statusCode ?? 502, { ...withoutHopByHop(answer.headers), 'content-length': String(text.length) });
            res.end(text);
          });
          answer.on('error', () => req.socket.destroy());
        });
        forward.on('error', () => req.socket.destroy());
        forward.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return new ContractProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function withoutHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name, value]) => value !== undefined && !HOP_BY_HOP.has(name)));
}
