import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import { isTwopcError } from '../../coordinator/engine/ports/protocol';
import type { DecisionRecord } from '../../coordinator/engine/ports/decision-log';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { nodeLogFs } from '../../coordinator/log/file/log-fs';
import { faultyLogFs, parseLogFault } from '../../chaos/faulty-log-fs';
import { logFsFor, TEST_BREAK_ENV, TEST_LOG_FAULT_ENV, testSwitchesFromEnv } from '../../chaos/test-switches';

/**
 * The test-only switches of `twopc serve` (chaos/test-switches.ts): refused
 * outside NODE_ENV=test, and the storage faults they inject behave like a
 * real disk: ENOSPC tears the record being written, EIO on fdatasync loses
 * what was written since the last good sync. Either way the log refuses
 * everything after, the engine goes unready, and no decision acknowledged
 * before the fault is lost.
 */

const T0 = 1_700_000_000_000;
const txId = (n: number) => `0190a4b0-c0d0-7000-8000-${String(n).padStart(12, '0')}`;
const commit = (n: number): Omit<DecisionRecord, 'type'> => ({
  txId: txId(n),
  at: T0,
  outcome: 'commit',
  source: 'engine',
  branches: [{ branchId: 1, gid: `twopc_${txId(n).replace(/-/g, '')}_1`, participant: 'ledger' }],
});

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-chaos-log-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe('test-only switches', () => {
  const shouts: string[] = [];
  const shout = (m: string) => shouts.push(m);

  it('are off unless set', () => {
    expect(testSwitchesFromEnv({ NODE_ENV: 'production' }, shout).breaks.size).toBe(0);
  });

  it('are refused unless NODE_ENV=test, naming the variable', () => {
    for (const env of [{ [TEST_BREAK_ENV]: 'commit-one-before-decision' }, { [TEST_LOG_FAULT_ENV]: 'write:ENOSPC:3', NODE_ENV: 'production' }]) {
      let error: unknown;
      try {
        testSwitchesFromEnv(env, shout);
      } catch (e) {
        error = e;
      }
      expect(isTwopcError(error, 'invalid-config')).toBe(true);
      expect((error as Error).message).toMatch(/test-only switch .* refused unless NODE_ENV=test/);
    }
  });

  it('refuse values they do not know', () => {
    expect(() => testSwitchesFromEnv({ NODE_ENV: 'test', [TEST_BREAK_ENV]: 'skip-everything' }, shout)).toThrow(/must be one of commit-one-before-decision/);
    expect(() => parseLogFault('write:EFULL:1', 'X')).toThrow(/X must be <write\|fdatasync>:<ENOSPC\|EIO>:<n >= 1>/);
    expect(() => parseLogFault('fdatasync:EIO:0', 'X')).toThrow(/n >= 1/);
  });

  it('are announced loudly when on', () => {
    shouts.length = 0;
    const switches = testSwitchesFromEnv({ NODE_ENV: 'test', [TEST_BREAK_ENV]: 'commit-one-before-decision', [TEST_LOG_FAULT_ENV]: 'fdatasync:EIO:2' }, shout);
    expect([...switches.breaks]).toEqual(['commit-one-before-decision']);
    expect(switches.logFault).toEqual({ op: 'fdatasync', code: 'EIO', at: 2 });
    expect(shouts.join('\n')).toMatch(/TEST ONLY: THE 2PC PROTOCOL IS DELIBERATELY BROKEN[\s\S]*TEST ONLY: the decision log will fail on purpose/);
    const base = nodeLogFs();
    expect(logFsFor({ breaks: new Set() }, base, shout)).toBe(base);
  });
});

describe('injected storage faults of the file log', () => {
  it('disk full: the n-th write lands half, the log refuses everything after, and a restart keeps every decision acknowledged before', async () => {
    const dir = tempDir();
    const faults: string[] = [];
    const log = new FileDecisionLog({ dir, fs: faultyLogFs(nodeLogFs(), parseLogFault('write:ENOSPC:6', 'fault'), (m) => faults.push(m)) });
    await log.open();
    // Opening writes too (the lock file): count the acknowledged decisions rather than assume them.
    const acknowledged: number[] = [];
    let failure: unknown;
    for (let n = 1; failure === undefined; n++) {
      failure = await errorOf(log.decide(commit(n)));
      if (failure === undefined) acknowledged.push(n);
    }
    expect(acknowledged.length).toBeGreaterThanOrEqual(3);
    expect(isTwopcError(failure, 'log-unavailable')).toBe(true);
    expect((failure as Error).message).toMatch(/write segment-\d+\.log failed \(ENOSPC/);
    expect(log.failure?.code).toBe('log-unavailable');
    expect(isTwopcError(await errorOf(log.decide(commit(99))), 'log-unavailable')).toBe(true);
    expect(faults).toEqual([expect.stringMatching(/injected ENOSPC on write #6/)]);
    await log.close();

    const again = new FileDecisionLog({ dir });
    const report = await again.open();
    expect(report.tornTail).toBeDefined(); // the half-written record, cut off
    for (const n of acknowledged) expect((await again.get(txId(n)))?.decision?.outcome).toBe('commit');
    expect(await again.get(txId(acknowledged.length + 1))).toBeUndefined();
    await again.close();
  });

  it('I/O error on fdatasync: what was only written since the last good sync is gone after a restart, forced decisions before it are not', async () => {
    const dir = tempDir();
    const log = new FileDecisionLog({ dir, fs: faultyLogFs(nodeLogFs(), parseLogFault('fdatasync:EIO:2', 'fault'), () => undefined) });
    await log.open();
    await log.decide(commit(1)); // fdatasync #1
    await log.append({ type: 'begin', txId: txId(2), at: T0, expiresAt: T0 + 1_000 }); // written, never synced
    const e = await errorOf(log.decide(commit(3))); // fdatasync #2 fails
    expect(isTwopcError(e, 'log-unavailable')).toBe(true);
    expect((e as Error).message).toMatch(/fdatasync segment-\d+\.log failed \(EIO/);
    await log.close();

    const again = new FileDecisionLog({ dir });
    const report = await again.open();
    expect(report.tornTail).toBeUndefined();
    expect((await again.get(txId(1)))?.decision?.outcome).toBe('commit');
    expect(await again.get(txId(2))).toBeUndefined();
    expect(await again.get(txId(3))).toBeUndefined();
    await again.close();
  });

  it('the engine on a failed log is not ready and refuses new work with log-unavailable', async () => {
    const dir = tempDir();
    const log = new FileDecisionLog({ dir, fs: faultyLogFs(nodeLogFs(), parseLogFault('fdatasync:EIO:1', 'fault'), () => undefined) });
    const engine = new TransactionEngine({ log, participants: new ParticipantRegistry(), config: parseEngineConfig({ sweepIntervalMs: 0 }) });
    await engine.start();
    expect(engine.ready).toBe(true);
    await errorOf(log.decide(commit(1)));
    expect(engine.ready).toBe(false);
    expect(engine.logFailure?.code).toBe('log-unavailable');
    const e = await errorOf(engine.begin());
    expect(isTwopcError(e, 'log-unavailable')).toBe(true);
    await engine.stop().catch(() => undefined);
  });
});
