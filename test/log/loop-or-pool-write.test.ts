import { LOOP_WRITE_MAX_BYTES, POOL_AFTER_SLOW_MS, SLOW_WRITE_MS, loopOrPoolWrite, type LoopOrPoolDeps } from '../../coordinator/log/file/log-fs';

// The file log's record writes: on the event loop while they are small and fast, on the
// thread pool after a slow one (a kernel holding writers up would stall the whole loop).
function fakeFs() {
  let clock = 1_000;
  const calls: string[] = [];
  let nextTakes = 0;
  const deps: LoopOrPoolDeps = {
    writeSync: (_fd, _b, _o, length) => {
      calls.push('loop');
      clock += nextTakes;
      return length;
    },
    poolWrite: async (_fd, _b, _o, length) => {
      calls.push('pool');
      return length;
    },
    now: () => clock,
  };
  return {
    deps,
    calls,
    takes: (ms: number) => (nextTakes = ms),
    advance: (ms: number) => (clock += ms),
  };
}

describe('loopOrPoolWrite', () => {
  const buffer = Buffer.alloc(16);

  it('writes small records on the loop and large ones on the pool', async () => {
    const f = fakeFs();
    const write = loopOrPoolWrite(f.deps);
    expect(await write(3, buffer, 0, 16, 0)).toBe(16);
    expect(await write(3, Buffer.alloc(LOOP_WRITE_MAX_BYTES + 1), 0, LOOP_WRITE_MAX_BYTES + 1, 16)).toBe(LOOP_WRITE_MAX_BYTES + 1);
    expect(f.calls).toEqual(['loop', 'pool']);
  });

  it('goes to the pool after a slow loop write, and back once that spell is over', async () => {
    const f = fakeFs();
    const write = loopOrPoolWrite(f.deps);
    f.takes(SLOW_WRITE_MS + 1);
    await write(3, buffer, 0, 16, 0);
    f.takes(0);
    await write(3, buffer, 0, 16, 16);
    f.advance(POOL_AFTER_SLOW_MS - 1);
    await write(3, buffer, 0, 16, 32);
    f.advance(2);
    await write(3, buffer, 0, 16, 48);
    await write(3, buffer, 0, 16, 64);
    expect(f.calls).toEqual(['loop', 'pool', 'pool', 'loop', 'loop']);
  });

  it('rejects (never throws) when the loop write fails', async () => {
    const f = fakeFs();
    const write = loopOrPoolWrite({
      ...f.deps,
      writeSync: () => {
        throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
      },
    });
    let result: Promise<number> | undefined;
    expect(() => (result = write(3, buffer, 0, 16, 0))).not.toThrow();
    await expect(result).rejects.toMatchObject({ code: 'ENOSPC' });
  });
});
