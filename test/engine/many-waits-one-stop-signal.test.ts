import { jsonLines, runTs } from '../support/child';

/**
 * Every abort whose phase 2 waits for a PREPARE still in flight listens to the
 * engine's one stop signal, and so does every phase-2 backoff. Dozens at once
 * are normal under load; Node printed "MaxListenersExceededWarning: Possible
 * EventTarget memory leak detected" past ten, which reads like a leak to an
 * operator although each listener goes when its wait ends. Run in a child
 * process: a jest sandbox does not see Node's process warnings.
 */
describe('the engine stop signal', () => {
  it('takes as many concurrent waits as there are transactions without a leak warning', async () => {
    const result = await runTs('test/engine/many-waits-child.ts', { TRANSACTIONS: '24' }, 60_000);
    const [line] = jsonLines<{ outcomes: string[]; rolledBack: number }>(result.stdout);
    expect({ code: result.code, line }).toEqual({ code: 0, line: { outcomes: ['TransactionAbortedError'], rolledBack: 24 } });
    expect(result.stderr).not.toContain('MaxListenersExceededWarning');
  });
});
