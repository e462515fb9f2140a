import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { MAX_TIMER_MS, sleep, waitAtMost } from '../../coordinator/engine/ports/backoff';

// Node runs a timer whose delay is over 2^31-1 ms after 1 ms: a "monthly" sweep
// interval would sweep back to back, a long phase-2 backoff would spin against a
// participant that is down, a long commit wait would answer at once.

const THIRTY_DAYS = 30 * 24 * 60 * 60 * 1000;

describe('engine settings that become timer delays', () => {
  test.each(['commitWaitMs', 'sweepIntervalMs', 'phaseTwoBaseDelayMs', 'phaseTwoMaxDelayMs'])('%s above the longest timer is refused', (field) => {
    const input = field === 'phaseTwoBaseDelayMs' ? { phaseTwoBaseDelayMs: THIRTY_DAYS, phaseTwoMaxDelayMs: THIRTY_DAYS } : { [field]: THIRTY_DAYS };
    expect(() => parseEngineConfig(input)).toThrow(
      expect.objectContaining({ code: 'invalid-config', details: expect.objectContaining({ field }), message: expect.stringMatching(/longest delay a Node timer keeps/) }),
    );
  });

  test('durations kept by the deadline queue or compared with a clock may be longer', () => {
    const config = parseEngineConfig({ maxTimeoutMs: THIRTY_DAYS, defaultTimeoutMs: THIRTY_DAYS, sweepGraceMs: THIRTY_DAYS });
    expect(config.maxTimeoutMs).toBe(THIRTY_DAYS);
  });
});

describe('the engine timers clamp what reaches them another way (the offline CLI sets commitWaitMs from --wait)', () => {
  let delays: number[];
  let spy: jest.SpyInstance;
  beforeEach(() => {
    delays = [];
    const real = global.setTimeout;
    spy = jest.spyOn(global, 'setTimeout').mockImplementation(((fn: () => void, delay: number) => {
      delays.push(delay);
      return real(fn, 60_000);
    }) as unknown as typeof setTimeout);
  });
  afterEach(() => spy.mockRestore());

  test('sleep', async () => {
    const stop = new AbortController();
    const slept = sleep(THIRTY_DAYS, stop.signal);
    stop.abort();
    await slept;
    expect(delays).toEqual([MAX_TIMER_MS]);
  });

  test('waitAtMost', async () => {
    await waitAtMost(Promise.resolve(1), THIRTY_DAYS);
    expect(delays).toEqual([MAX_TIMER_MS]);
  });
});
