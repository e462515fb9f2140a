import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isTwopcError, type TwopcError } from '../../coordinator/engine/ports/protocol';
import type { DecisionRecord } from '../../coordinator/engine/ports/decision-log';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { nodeLogFs, type LogFs } from '../../coordinator/log/file/log-fs';

type Op = 'write' | 'fdatasync' | 'open' | 'fsync';

/** node's fs, except that an armed call fails once with the given errno code. */
function faultyFs() {
  const base = nodeLogFs();
  const armed = new Map<Op, { code: string; when: (path: string) => boolean }>();
  const paths = new Map<number, string>();
  const fail = (op: Op, p: string) => {
    const a = armed.get(op);
    if (!a || !a.when(p)) return;
    armed.delete(op);
    throw Object.assign(new Error(`${a.code}: injected, ${op} '${p}'`), { code: a.code, syscall: op, path: p });
  };
  const lfs: LogFs = {
    ...base,
    open: async (p, flags) => {
      fail('open', p);
      const fd = await base.open(p, flags);
      paths.set(fd, p);
      return fd;
    },
    write: async (fd, ...rest) => {
      fail('write', paths.get(fd) ?? '');
      return base.write(fd, ...rest);
    },
    fdatasync: async (fd) => {
      fail('fdatasync', paths.get(fd) ?? '');
      return base.fdatasync(fd);
    },
    fsync: async (fd) => {
      fail('fsync', paths.get(fd) ?? '');
      return base.fsync(fd);
    },
  };
  return {
    fs: lfs,
    arm(op: Op, code: string, when: (path: string) => boolean = () => true) {
      armed.set(op, { code, when });
    },
  };
}

const T0 = 1_700_000_000_000;
const decision = (txId: string, outcome: 'commit' | 'abort' = 'commit'): Omit<DecisionRecord, 'type'> => ({
  txId,
  at: T0,
  outcome,
  source: 'engine',
  branches: [{ branchId: 1, gid: `twopc_${txId.replace(/[^a-z0-9]/g, '')}_1`, participant: 'ledger' }],
});

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-faults-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as TwopcError,
  );

async function expectRefusesEverything(log: FileDecisionLog, cause: string): Promise<void> {
  for (const call of [
    () => log.append({ type: 'begin', txId: 'tx-later', at: T0, expiresAt: T0 }),
    () => log.decide(decision('tx-later', 'abort')),
    () => log.get('tx-1'),
    () => log.unfinished(),
    () => log.history('tx-1'),
    () => log.compact(),
  ]) {
    const e = await errorOf(call());
    expect(isTwopcError(e, 'log-unavailable')).toBe(true);
    expect((e!.cause as { code?: string }).code).toBe(cause);
  }
}

describe('FileDecisionLog after write errors', () => {
  it('ENOSPC on write: the whole batch rejects, and so does everything after', async () => {
    const dir = tempDir();
    const f = faultyFs();
    const log = new FileDecisionLog({ dir, fs: f.fs });
    await log.open();
    await log.decide(decision('tx-0'));
    f.arm('write', 'ENOSPC');
    const batch = [
      log.decide(decision('tx-1')),
      log.append({ type: 'begin', txId: 'tx-2', at: T0, expiresAt: T0 }),
      log.decide(decision('tx-3', 'abort')),
      log.decide(decision('tx-1', 'abort')), // a racing decider for tx-1 shares its fate
    ];
    const errors = await Promise.all(batch.map(errorOf));
    for (const e of errors) {
      expect(isTwopcError(e, 'log-unavailable')).toBe(true);
      expect(e!.message).toMatch(/write segment-\d+\.log failed \(ENOSPC/);
      expect((e!.cause as { code?: string }).code).toBe('ENOSPC');
    }
    await expectRefusesEverything(log, 'ENOSPC');
    await log.close();

    // Nothing of the failed batch reached the file; what was acknowledged before did.
    const again = new FileDecisionLog({ dir });
    await again.open();
    expect((await again.get('tx-0'))!.decision!.outcome).toBe('commit');
    for (const tx of ['tx-1', 'tx-2', 'tx-3']) expect(await again.get(tx)).toBeUndefined();
    await again.close();
  });

  it('EIO on fdatasync: the commit and everyone waiting on it reject; the reopened log decides', async () => {
    const dir = tempDir();
    const f = faultyFs();
    const log = new FileDecisionLog({ dir, fs: f.fs });
    await log.open();
    f.arm('fdatasync', 'EIO');
    const commit = errorOf(log.decide(decision('tx-1')));
    const racer = errorOf(log.decide(decision('tx-1', 'abort')));
    const abort = log.decide(decision('tx-2', 'abort'));
    for (const e of [await commit, await racer]) {
      expect(e?.code).toBe('log-unavailable');
      expect(e!.message).toMatch(/fdatasync segment-\d+\.log failed \(EIO/);
    }
    // Written before the sync was attempted: an unforced record in the batch was acknowledged.
    expect((await abort).outcome).toBe('abort');
    await expectRefusesEverything(log, 'EIO');
    await log.close();

    // Whether the commit reached the disk is not known to the failed process; nobody acted on it,
    // and after reopening there is exactly one answer, which every decider now gets.
    const again = new FileDecisionLog({ dir });
    await again.open();
    const winner = await again.decide(decision('tx-1', 'abort'));
    expect(await again.decide(decision('tx-1', winner.outcome === 'commit' ? 'abort' : 'commit'))).toEqual(winner);
    await again.close();
  });

  it('ENOSPC creating the next segment fails the log instead of writing past the limit', async () => {
    const dir = tempDir();
    const f = faultyFs();
    const log = new FileDecisionLog({ dir, fs: f.fs, segmentBytes: 4096, autoCompact: false });
    await log.open();
    f.arm('open', 'ENOSPC', (p) => /segment-0+2\.log$/.test(p));
    const results: (TwopcError | undefined)[] = [];
    for (let i = 0; i < 60; i++) results.push(await errorOf(log.decide(decision(`tx-${i}`))));
    const firstFailure = results.findIndex((e) => e !== undefined);
    expect(firstFailure).toBeGreaterThan(0);
    for (const e of results.slice(firstFailure)) expect(e?.code).toBe('log-unavailable');
    expect(results[firstFailure]!.message).toMatch(/create segment-0+2\.log failed \(ENOSPC/);
    await log.close();
    const again = new FileDecisionLog({ dir, segmentBytes: 4096 });
    const report = await again.open();
    expect(report.records).toBe(firstFailure);
    await again.close();
  });

  it('a failed compaction leaves the log usable', async () => {
    const dir = tempDir();
    const f = faultyFs();
    const log = new FileDecisionLog({ dir, fs: f.fs, segmentBytes: 4096, autoCompact: false, completedRetentionMs: 0 });
    await log.open();
    for (let i = 0; i < 40; i++) {
      await log.decide(decision(`tx-${i}`));
      await log.append({ type: 'complete', txId: `tx-${i}`, at: T0 });
    }
    f.arm('write', 'ENOSPC', (p) => p.endsWith('.snap.tmp'));
    const e = await errorOf(log.compact());
    expect(e).toMatchObject({ code: 'log-unavailable', details: { operation: 'compact' } });
    expect(e!.message).toMatch(/compaction failed \(ENOSPC.*still takes writes/);
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect((await log.decide(decision('tx-after'))).outcome).toBe('commit');
    expect((await log.compact()).forgotten).toBe(40);
    await log.close();
  });

  it('close() after a failure releases the lock', async () => {
    const dir = tempDir();
    const f = faultyFs();
    const log = new FileDecisionLog({ dir, fs: f.fs });
    await log.open();
    f.arm('write', 'EIO');
    await errorOf(log.decide(decision('tx-1')));
    await log.close();
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
  });
});
