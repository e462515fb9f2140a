import path from 'node:path';
import { growthFactorIn } from '../../coordinator/service/heap-control';
import { jsonLines, runTs } from '../support/child';

/**
 * Issue 16: an idle coordinator's young generation grew back to 32 MiB within
 * 15 s of V8 shrinking it (health probes and scrapes still allocate), which
 * took idle RSS back over 150 MiB. The cap must hold it in a real V8.
 */
describe('youngGenerationCap', () => {
  it('keeps V8 from growing the young generation while capped, and lets it grow once uncapped', async () => {
    const run = await runTs(path.join(__dirname, 'young-generation-child.ts'), {});
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    const [sizes] = jsonLines<{ start: number; capped: number; uncapped: number }>(run.stdout);
    // A fresh process starts with a small space (a few MiB once tsx has loaded); the survivors allocated
    // would double it up to 32 MiB, as they do once uncapped.
    expect(sizes.start).toBeLessThan(16);
    expect(sizes.capped).toBe(sizes.start);
    expect(sizes.uncapped).toBeGreaterThanOrEqual(2 * sizes.start);
  });

  it('restores the growth factor given to node, in either spelling, else none (V8 default)', () => {
    expect(growthFactorIn([])).toBeUndefined();
    expect(growthFactorIn(['--max-old-space-size=512'])).toBeUndefined();
    expect(growthFactorIn(['--semi-space-growth-factor=4'])).toBe(4);
    expect(growthFactorIn(['--semi_space_growth_factor', '3'])).toBe(3);
    expect(growthFactorIn(['--semi-space-growth-factor=3', '--semi-space-growth-factor=5'])).toBe(5);
    // Not a factor V8 would take: the default is restored instead.
    expect(growthFactorIn(['--semi-space-growth-factor=0'])).toBeUndefined();
    expect(growthFactorIn(['--semi-space-growth-factor=x'])).toBeUndefined();
  });
});
