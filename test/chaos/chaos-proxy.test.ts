import net from 'node:net';
import { ChaosProxy } from '../../chaos/chaos-proxy';

/** An echo server that also keeps what each connection sent it, and whether it ended. */
async function echoServer(): Promise<{ port: number; received: Buffer[]; ended: boolean[]; close(): Promise<void> }> {
  const received: Buffer[] = [];
  const ended: boolean[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    const i = received.push(Buffer.alloc(0)) - 1;
    ended.push(false);
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('data', (d) => {
      received[i] = Buffer.concat([received[i], d]);
      s.write(d);
    });
    s.on('end', () => {
      ended[i] = true;
      s.end();
    });
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    ended,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Connects, optionally sends, and collects what comes back until close or `waitMs`, or, given
 * `until`, as soon as that much came back (a passing case then does not depend on the machine's
 * speed: a loaded CI run once took over 200 ms to echo through the proxy).
 */
async function exchange(port: number, send: string | undefined, waitMs = 500, until?: string): Promise<{ got: string; error?: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    let error: string | undefined;
    socket.on('data', (d) => {
      got += d.toString();
      if (until === undefined || got !== until) return;
      clearTimeout(timer);
      socket.removeAllListeners('close');
      socket.destroy();
      resolve({ got, closed: false });
    });
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ got, ...(error ? { error } : {}), closed: false });
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ got, ...(error ? { error } : {}), closed: true });
    });
    if (send !== undefined) socket.write(send);
  });
}

describe('ChaosProxy', () => {
  let server: Awaited<ReturnType<typeof echoServer>>;
  let proxy: ChaosProxy;

  beforeEach(async () => {
    server = await echoServer();
    proxy = await ChaosProxy.start('test', { host: '127.0.0.1', port: server.port });
  });
  afterEach(async () => {
    await proxy.close();
    await server.close();
  });

  it('passes bytes both ways', async () => {
    expect((await exchange(proxy.port, 'hello', 10_000, 'hello')).got).toBe('hello');
  });

  it('delays every chunk, in order', async () => {
    proxy.setMode({ kind: 'delay', ms: 150 });
    const started = Date.now();
    const r = await exchange(proxy.port, 'slow', 10_000, 'slow');
    expect(r.got).toBe('slow');
    // Delayed on the way there and on the way back.
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('refuses new connections with a reset, and counts them', async () => {
    proxy.setMode({ kind: 'refuse' });
    const r = await exchange(proxy.port, 'x', 500);
    expect(r.got).toBe('');
    expect(r.closed).toBe(true);
    expect(proxy.stats.refused).toBe(1);
    expect(server.received).toHaveLength(0);
  });

  it('blackholes new connections: nothing answers, nothing reaches the target', async () => {
    proxy.setMode({ kind: 'blackhole' });
    const r = await exchange(proxy.port, 'anyone?', 300);
    expect(r).toEqual({ got: '', closed: false });
    expect(server.received).toHaveLength(0);
    expect(proxy.stats.blackholed).toBe(1);
  });

  it('cuts a connection after N bytes, mid-message: the target gets exactly the prefix, then EOF', async () => {
    proxy.setMode({ kind: 'cut', afterBytes: 4 });
    const r = await exchange(proxy.port, 'abcdefgh', 500);
    expect(r.closed).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.received.map(String)).toEqual(['abcd']);
    expect(server.ended).toEqual([true]);
    expect(proxy.stats.cut).toBe(1);
  });

  it('cuts connections that were already open when the mode was set', async () => {
    const socket = net.connect(proxy.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('12');
    await new Promise((resolve) => setTimeout(resolve, 100));
    proxy.setMode({ kind: 'cut', afterBytes: 3 });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('34567');
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(String(server.received[0])).toBe('12345');
  });

  it('resets every established connection', async () => {
    const socket = net.connect(proxy.port, '127.0.0.1');
    const errors: string[] = [];
    socket.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('hi');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    expect(proxy.resetAll()).toBe(1);
    await closed;
    expect(errors).toEqual(['ECONNRESET']);
  });

  it('passes again once the mode is back to pass', async () => {
    proxy.setMode({ kind: 'refuse' });
    await exchange(proxy.port, 'x', 200);
    proxy.setMode({ kind: 'pass' });
    expect((await exchange(proxy.port, 'back', 10_000, 'back')).got).toBe('back');
  });
});
