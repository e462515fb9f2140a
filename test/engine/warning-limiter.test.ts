import { WarningLimiter } from '../../coordinator/engine/warning-limiter';

describe('WarningLimiter', () => {
  it('writes the first warning of a key at once, then one per interval saying how many were held back; keys are independent', () => {
    let now = 0;
    const limiter = new WarningLimiter(1_000, () => now);
    const written: Array<[string, number]> = [];
    const warn = (key: string) => limiter.warn(key, (held) => written.push([key, held]));
    warn('a');
    warn('a');
    warn('b');
    now = 999;
    warn('a');
    now = 1_000;
    warn('a');
    warn('b');
    now = 5_000;
    warn('a');
    expect(written).toEqual([
      ['a', 0],
      ['b', 0],
      ['a', 2],
      ['b', 0],
      ['a', 0],
    ]);
  });
});
