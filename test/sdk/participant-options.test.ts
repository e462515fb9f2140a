import { MAX_TIMER_MS, parseParticipantOptions } from '../../participant-sdk/src/participant-options';
import { Periodic } from '../../participant-sdk/src/periodic';
import type { BranchEntry } from '../../participant-sdk/src/branch-book';
import { armTimeout, type EnlistmentDeps } from '../../participant-sdk/src/enlistment';

// The participant's settings: delays of timers are capped at what a Node timer
// keeps, ages compared with a clock are not (they may have to exceed the
// coordinator's longest transaction timeout, which it allows to be months).

const base = {
  name: 'orders',
  pool: { connect: async () => undefined } as never,
  coordinatorUrl: 'http://127.0.0.1:1',
  secret: 'a-secret-of-sixteen-chars',
  publicUrl: 'http://127.0.0.1:2/twopc',
};
const THIRTY_DAYS = 30 * 24 * 60 * 60 * 1000;

describe('participant options', () => {
  test('ages may be longer than a timer keeps: presumeAbortAfterMs and sweepGraceMs of 30 days', () => {
    const o = parseParticipantOptions({ ...base, presumeAbortAfterMs: THIRTY_DAYS, sweepGraceMs: THIRTY_DAYS });
    expect(o.presumeAbortAfterMs).toBe(THIRTY_DAYS);
    expect(o.sweepGraceMs).toBe(THIRTY_DAYS);
  });

  test.each(['sweepIntervalMs', 'pruneIntervalMs', 'heldGraceMs', 'maxHeldMs', 'connectionLossWaitMs', 'requestTimeoutMs'])(
    'a timer delay above the longest a Node timer keeps is refused: %s',
    (field) => {
      expect(() => parseParticipantOptions({ ...base, [field]: MAX_TIMER_MS + 1 })).toThrow(
        expect.objectContaining({ code: 'invalid-config', details: expect.objectContaining({ field }), message: expect.stringMatching(/longest delay a Node timer keeps/) }),
      );
      expect(parseParticipantOptions({ ...base, [field]: MAX_TIMER_MS })[field as 'sweepIntervalMs']).toBe(MAX_TIMER_MS);
    },
  );

  test('markerRetentionMs has a floor of 1 h (a retention given in seconds is refused), and no ceiling (it is no timer)', () => {
    expect(() => parseParticipantOptions({ ...base, markerRetentionMs: 604_800 })).toThrow(
      expect.objectContaining({ code: 'invalid-config', details: expect.objectContaining({ field: 'markerRetentionMs' }), message: expect.stringMatching(/markerRetentionMs must be >= 3600000 \(1 h\)/) }),
    );
    expect(parseParticipantOptions({ ...base, markerRetentionMs: 3_600_000 }).markerRetentionMs).toBe(3_600_000);
    expect(parseParticipantOptions({ ...base, markerRetentionMs: THIRTY_DAYS }).markerRetentionMs).toBe(THIRTY_DAYS);
  });

  test('maxBodyBytes is a size, not a delay', () => {
    expect(parseParticipantOptions({ ...base, maxBodyBytes: 8 * 1024 * 1024 * 1024 }).maxBodyBytes).toBe(8 * 1024 * 1024 * 1024);
    expect(() => parseParticipantOptions({ ...base, maxBodyBytes: 100 })).toThrow(/maxBodyBytes must be >= 256 bytes/);
  });
});

describe('Periodic', () => {
  test('stop tells a run in progress to end and waits for it', async () => {
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    let seen: AbortSignal | undefined;
    // A run that goes on until it is told to stop (a first pruning pass over a large backlog).
    const periodic = new Periodic(1, (signal) => {
      seen = signal;
      started();
      return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    }, () => undefined);
    periodic.start();
    await running;
    expect(seen?.aborted).toBe(false);
    await periodic.stop();
    expect(seen?.aborted).toBe(true);
  });

  test('a restarted Periodic gives its runs a signal not yet aborted', async () => {
    const signals: AbortSignal[] = [];
    let ran!: () => void;
    let once = new Promise<void>((resolve) => (ran = resolve));
    const periodic = new Periodic(1, async (signal) => {
      signals.push(signal);
      ran();
    }, () => undefined);
    periodic.start();
    await once;
    await periodic.stop();
    once = new Promise<void>((resolve) => (ran = resolve));
    periodic.start();
    await once;
    await periodic.stop();
    expect(signals[0].aborted).toBe(true);
    expect(signals[signals.length - 1]).not.toBe(signals[0]);
  });

  test('an interval above the longest timer is clamped, not run every millisecond', () => {
    const spy = jest.spyOn(global, 'setTimeout');
    try {
      const periodic = new Periodic(THIRTY_DAYS, async () => undefined, () => undefined);
      periodic.start();
      expect(spy).toHaveBeenLastCalledWith(expect.any(Function), MAX_TIMER_MS);
      void periodic.stop();
    } finally {
      spy.mockRestore();
    }
  });
});

describe('a held branch of a transaction that expires in more than 24.8 days', () => {
  test('waits the longest a timer keeps and looks again, instead of rolling back after 1 ms', () => {
    const timers: Array<{ fn: () => void; delay: number }> = [];
    const spy = jest.spyOn(global, 'setTimeout').mockImplementation(((fn: () => void, delay: number) => {
      timers.push({ fn, delay });
      return { unref: () => undefined } as unknown as NodeJS.Timeout;
    }) as unknown as typeof setTimeout);
    const run = jest.fn(async () => undefined);
    try {
      const entry = { ref: { txId: 't', branchId: 1, gid: 'g' }, expiresAt: Date.now() + THIRTY_DAYS } as unknown as BranchEntry;
      const deps = { book: { run }, logger: { info: () => undefined, warn: () => undefined } } as unknown as EnlistmentDeps;
      armTimeout(deps, entry, entry.expiresAt);
      expect(timers[0].delay).toBe(MAX_TIMER_MS);
      timers[0].fn();
      // Looked again: 30 days less the (mocked, instant) 24.8-day wait is still ahead, a new timer, no rollback.
      expect(timers).toHaveLength(2);
      expect(run).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});
