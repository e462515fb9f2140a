import { isTwopcError } from '../../coordinator/engine/ports/protocol';
import type { BranchInfo } from '../../coordinator/engine/ports/types';
import type { DecisionLog, DecisionRecord, LogRecord } from '../../coordinator/engine/ports/decision-log';

/** What the suite asks of a store beyond the interface: retention and a clock it can move. */
export interface ConformanceSettings {
  /** Completed transactions older than this may be forgotten by `compact()`. */
  completedRetentionMs: number;
  /** The clock the store must use for retention. */
  now: () => number;
}

/** One isolated storage (a directory, a schema, a key prefix) the suite runs against. */
export interface ConformanceTarget {
  /** A store over this storage. Called again after `close()` to reopen the same data. */
  create(settings: ConformanceSettings): DecisionLog;
  /** Removes the storage; called once per test, after every store is closed. */
  destroy(): Promise<void>;
  /**
   * Crashes the backend the hard way (SIGKILL of redis-server, an immediate
   * PostgreSQL stop: no shutdown, nothing flushed) and starts it again on the
   * same data. Stores stay open through it. Required with `features.crash`.
   */
  crash?(): Promise<void>;
}

/** What a store can be tested for beyond the interface. */
export interface ConformanceFeatures {
  /** Several instances may be open on one storage at once, as several coordinators are (PostgreSQL, Redis). */
  sharedBackend?: boolean;
  /** The target can crash its backend and bring it back (`ConformanceTarget.crash`). */
  crash?: boolean;
}

const branch = (txId: string, branchId: number, participant = `db${branchId}`): BranchInfo => ({
  branchId,
  gid: `twopc_${txId.replace(/[^a-z0-9]/g, '')}_${branchId}`,
  participant,
});

/**
 * The contract every decision log store keeps (see `DecisionLog`), written
 * against the interface only. Each store's test file calls this with a factory
 * that gives a fresh, isolated target per test; `features` turns on the
 * tests for several instances on one backend and for backend crashes.
 *
 * @example
 * describeDecisionLogConformance('FileDecisionLog', async () => {
 *   const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'twopc-log-'));
 *   return { create: (s) => new FileDecisionLog({ dir, ...s }), destroy: () => fs.rm(dir, { recursive: true }) };
 * });
 */
export function describeDecisionLogConformance(name: string, factory: () => Promise<ConformanceTarget>, features: ConformanceFeatures = {}): void {
  describe(`${name} (DecisionLog conformance)`, () => {
    let target: ConformanceTarget;
    let clock: number;
    let open: DecisionLog[];
    const settings: ConformanceSettings = { completedRetentionMs: 60_000, now: () => clock };

    /** Opens a store over the target (a reopen when one was open before). */
    async function start(): Promise<DecisionLog> {
      const log = target.create(settings);
      open.push(log);
      await log.open();
      return log;
    }

    async function reopen(log: DecisionLog): Promise<DecisionLog> {
      await log.close();
      return start();
    }

    beforeEach(async () => {
      clock = 1_700_000_000_000;
      open = [];
      target = await factory();
    });

    afterEach(async () => {
      for (const log of open) await log.close().catch(() => undefined);
      await target.destroy();
    });

    const begin = (log: DecisionLog, txId: string, at = clock, metadata?: Record<string, unknown>) =>
      log.append({ type: 'begin', txId, at, expiresAt: at + 30_000, ...(metadata ? { metadata } : {}) });
    const decision = (txId: string, outcome: 'commit' | 'abort', branches: BranchInfo[] = [branch(txId, 1)]): Omit<DecisionRecord, 'type'> => ({
      txId,
      at: clock,
      outcome,
      source: 'engine',
      branches,
      ...(outcome === 'abort' ? { reason: { cause: 'vote-no', message: 'branch 1 said no', branchId: 1, participant: 'db1' } } : {}),
    });

    it('opens empty and knows nothing', async () => {
      const log = await start();
      expect(await log.get('tx-none')).toBeUndefined();
      expect(await log.history('tx-none')).toEqual([]);
      expect(await log.unfinished()).toEqual([]);
      await log.close();
      const again = target.create(settings);
      open.push(again);
      const report = await again.open();
      expect(report).toMatchObject({ records: 0, unfinished: 0 });
      expect(report.tornTail).toBeUndefined();
    });

    it('folds begin, enlist, decision, hazard and complete into the snapshot', async () => {
      const log = await start();
      await begin(log, 'tx-a', clock, { order: 42, note: 'gift' });
      await log.append({ type: 'enlist', txId: 'tx-a', at: clock + 1, branch: branch('tx-a', 2) });
      await log.append({ type: 'enlist', txId: 'tx-a', at: clock + 2, branch: { ...branch('tx-a', 1), url: 'http://svc/twopc' } });
      let snap = await log.get('tx-a');
      expect(snap).toMatchObject({ txId: 'tx-a', createdAt: clock, expiresAt: clock + 30_000, metadata: { order: 42, note: 'gift' }, completed: false, hazards: [] });
      expect(snap!.branches.map((b) => b.branchId)).toEqual([1, 2]);
      expect(snap!.branches[0].url).toBe('http://svc/twopc');
      expect(snap!.decision).toBeUndefined();

      const d = await log.decide(decision('tx-a', 'commit', snap!.branches));
      expect(d).toMatchObject({ type: 'decision', txId: 'tx-a', outcome: 'commit', source: 'engine' });
      expect(d.branches.map((b) => b.branchId)).toEqual([1, 2]);
      await log.append({ type: 'hazard', txId: 'tx-a', at: clock + 3, branchId: 2, gid: branch('tx-a', 2).gid, participant: 'db2', detail: '42704 on commit and no marker' });
      snap = await log.get('tx-a');
      expect(snap!.decision).toEqual(d);
      expect(snap!.hazards).toHaveLength(1);
      expect(snap!.hazards[0]).toMatchObject({ type: 'hazard', branchId: 2, detail: '42704 on commit and no marker' });

      await log.append({ type: 'complete', txId: 'tx-a', at: clock + 4 });
      snap = await log.get('tx-a');
      expect(snap).toMatchObject({ completed: true, completedAt: clock + 4 });
      expect(await log.unfinished()).toEqual([]);
    });

    it("keeps an operator's action records in the history without changing the transaction, and never lets them make one exist", async () => {
      const log = await start();
      await begin(log, 'tx-act');
      await log.append({ type: 'enlist', txId: 'tx-act', at: clock + 1, branch: branch('tx-act', 1) });
      const before = await log.get('tx-act');
      await log.append({ type: 'action', txId: 'tx-act', at: clock + 2, by: 'alice', action: 'resolve-abort' });
      expect(await log.get('tx-act')).toEqual(before);
      expect((await log.unfinished()).map((s) => s.txId)).toEqual(['tx-act']);
      // One whose transaction was forgotten meanwhile (an action is appended only to unfinished ones): it stays
      // an audit record and is no transaction: not listed, not found, so recovery never decides it.
      await log.append({ type: 'action', txId: 'tx-gone', at: clock + 3, by: 'bob', action: 'retry' });
      expect(await log.get('tx-gone')).toBeUndefined();
      expect((await log.unfinished()).map((s) => s.txId)).toEqual(['tx-act']);
      await expect(log.append({ type: 'action', txId: 'tx-act', at: clock, by: '', action: 'retry' })).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'by' } });
      await expect(log.append({ type: 'action', txId: 'tx-act', at: clock, by: 'eve', action: 'delete' as never })).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'action' } });
      // A settle carries the operator's note (how the hazard was reconciled): kept as written, quotes and newlines too.
      const note = 'reversed "transfer 42" by hand\nticket OPS-7 ✓';
      await log.append({ type: 'action', txId: 'tx-act', at: clock + 4, by: 'carol', action: 'settle', note });
      for (const bad of ['', 'x'.repeat(1001), 7]) {
        await expect(log.append({ type: 'action', txId: 'tx-act', at: clock, by: 'eve', action: 'settle', note: bad as string })).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'note' } });
      }
      expect(await log.get('tx-act')).toEqual(before);

      const again = await reopen(log);
      const history = await again.history('tx-act');
      expect(history.map((r) => r.type)).toEqual(['begin', 'enlist', 'action', 'action']);
      expect(history[2]).toEqual({ type: 'action', txId: 'tx-act', at: clock + 2, by: 'alice', action: 'resolve-abort' });
      expect(history[3]).toEqual({ type: 'action', txId: 'tx-act', at: clock + 4, by: 'carol', action: 'settle', note });
      expect(await again.get('tx-act')).toEqual(before);
      expect(await again.get('tx-gone')).toBeUndefined();
      expect((await again.unfinished()).map((s) => s.txId)).toEqual(['tx-act']);

      // A settle's completion names who settled it (what the audit trail labels "settled", and only it).
      await expect(again.append({ type: 'complete', txId: 'tx-act', at: clock + 5, by: '' })).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'by' } });
      await again.append({ type: 'complete', txId: 'tx-act', at: clock + 5, outcome: 'abort', by: 'carol' });
      const settled = await reopen(again);
      expect((await settled.history('tx-act')).at(-1)).toEqual({ type: 'complete', txId: 'tx-act', at: clock + 5, outcome: 'abort', by: 'carol' });
      expect(await settled.get('tx-act')).toMatchObject({ completed: true, outcome: 'abort' });
    });

    it('keeps every record of a transaction in append order', async () => {
      const log = await start();
      const writes: Promise<void>[] = [];
      // Not awaited one by one: order must hold for records in flight together.
      writes.push(begin(log, 'tx-o'));
      for (let i = 1; i <= 5; i++) writes.push(log.append({ type: 'enlist', txId: 'tx-o', at: clock + i, branch: branch('tx-o', i) }));
      await Promise.all(writes);
      await log.decide(decision('tx-o', 'abort'));
      await log.append({ type: 'complete', txId: 'tx-o', at: clock + 10 });
      const history = await log.history('tx-o');
      expect(history.map((r) => r.type)).toEqual(['begin', 'enlist', 'enlist', 'enlist', 'enlist', 'enlist', 'decision', 'complete']);
      expect(history.filter((r): r is Extract<LogRecord, { type: 'enlist' }> => r.type === 'enlist').map((r) => r.branch.branchId)).toEqual([1, 2, 3, 4, 5]);
    });

    it('decide is a single-assignment register: racing deciders all get the one winner', async () => {
      const log = await start();
      const txs = Array.from({ length: 12 }, (_, i) => `tx-race-${i}`);
      for (const tx of txs) await begin(log, tx);
      const calls: Promise<DecisionRecord>[] = [];
      const sources = ['engine', 'timeout', 'recovery', 'sweep', 'admin'] as const;
      for (let round = 0; round < 16; round++) {
        for (const tx of txs) {
          const outcome = (round + tx.length) % 2 === 0 ? 'commit' : 'abort';
          calls.push(log.decide({ ...decision(tx, outcome), source: sources[round % sources.length] }));
        }
      }
      const results = await Promise.all(calls);
      for (const tx of txs) {
        const mine = results.filter((r) => r.txId === tx);
        expect(mine).toHaveLength(16);
        for (const r of mine) expect(r).toEqual(mine[0]);
        expect((await log.get(tx))!.decision).toEqual(mine[0]);
        expect((await log.history(tx)).filter((r) => r.type === 'decision')).toHaveLength(1);
      }
      const reopened = await reopen(log);
      for (const tx of txs) {
        const winner = results.find((r) => r.txId === tx)!;
        expect((await reopened.get(tx))!.decision).toEqual(winner);
        expect(await reopened.decide(decision(tx, winner.outcome === 'commit' ? 'abort' : 'commit'))).toEqual(winner);
      }
    });

    it('a later decide returns the earlier decision, not its own', async () => {
      const log = await start();
      const first = await log.decide(decision('tx-late', 'abort'));
      const second = await log.decide({ ...decision('tx-late', 'commit'), source: 'admin' });
      expect(second).toEqual(first);
      expect(second.outcome).toBe('abort');
    });

    it('decides a transaction it never saw begin (a sweep found its prepared branch)', async () => {
      const log = await start();
      const d = await log.decide({ ...decision('tx-orphan', 'abort'), source: 'sweep' });
      const snap = await log.get('tx-orphan');
      expect(snap!.decision).toEqual(d);
      expect(snap!.createdAt).toBe(d.at);
      expect(snap!.completed).toBe(false);
      expect((await log.unfinished()).map((s) => s.txId)).toEqual(['tx-orphan']);
    });

    it('a commit decision survives close and reopen, branches and all', async () => {
      let log = await start();
      await begin(log, 'tx-c');
      const branches = [branch('tx-c', 1, 'ledger_a'), { ...branch('tx-c', 2, 'ledger_b'), url: 'http://b/twopc' }];
      const d = await log.decide(decision('tx-c', 'commit', branches));
      log = await reopen(log);
      const snap = await log.get('tx-c');
      expect(snap!.decision).toEqual(d);
      expect(snap!.decision!.branches).toEqual(branches);
      expect((await log.decide(decision('tx-c', 'abort'))).outcome).toBe('commit');
    });

    it('a commit decision keeps the xid each branch voted with; a branch without one (an older record) reads back without', async () => {
      let log = await start();
      await begin(log, 'tx-x');
      // A proof (cluster history and xid), a bare xid (a vote of an older version), none.
      const branches = [{ ...branch('tx-x', 1, 'ledger_a'), xid: '-7714643463180032033.4294967295:18446744073709551615' }, { ...branch('tx-x', 3, 'ledger_c'), xid: '18446744073709551615' }, branch('tx-x', 2, 'ledger_b')];
      const d = await log.decide(decision('tx-x', 'commit', branches));
      expect(d.branches).toEqual(branches);
      log = await reopen(log);
      const snap = await log.get('tx-x');
      expect(snap!.decision!.branches).toEqual(branches);
      expect(snap!.decision!.branches[2]).not.toHaveProperty('xid');
      await expect(log.decide({ ...decision('tx-y', 'commit'), branches: [{ ...branch('tx-y', 1), xid: '12a' }] })).rejects.toMatchObject({ code: 'invalid-input', message: expect.stringContaining('branches[0].xid') });
    });

    it('records, history and unfinished (oldest first) survive reopen', async () => {
      let log = await start();
      await begin(log, 'tx-2', clock + 2000);
      await begin(log, 'tx-1', clock + 1000);
      await begin(log, 'tx-3', clock + 3000);
      await begin(log, 'tx-done', clock);
      await log.append({ type: 'enlist', txId: 'tx-1', at: clock + 1001, branch: branch('tx-1', 1) });
      await log.decide(decision('tx-1', 'commit'));
      await log.decide(decision('tx-done', 'abort'));
      await log.append({ type: 'complete', txId: 'tx-done', at: clock + 5 });
      const before = { unfinished: await log.unfinished(), history: await log.history('tx-1'), done: await log.get('tx-done') };
      expect(before.unfinished.map((s) => s.txId)).toEqual(['tx-1', 'tx-2', 'tx-3']);

      log = await reopen(log);
      expect(await log.unfinished()).toEqual(before.unfinished);
      expect(await log.history('tx-1')).toEqual(before.history);
      expect(await log.get('tx-done')).toEqual(before.done);
    });

    it('compaction forgets completed transactions past retention and keeps everything else', async () => {
      let log = await start();
      await begin(log, 'tx-old');
      await log.decide(decision('tx-old', 'commit'));
      await log.append({ type: 'complete', txId: 'tx-old', at: clock });
      clock += 50_000;
      await begin(log, 'tx-recent');
      await log.decide(decision('tx-recent', 'abort'));
      await log.append({ type: 'complete', txId: 'tx-recent', at: clock });
      await begin(log, 'tx-open');
      await log.append({ type: 'enlist', txId: 'tx-open', at: clock, branch: branch('tx-open', 1) });
      await log.decide(decision('tx-decided', 'commit'));
      clock += 20_000; // tx-old is now 70 s past completion, tx-recent 20 s

      const keptBefore = { recent: await log.history('tx-recent'), open: await log.history('tx-open'), decided: await log.history('tx-decided') };
      const report = await log.compact();
      expect(report.forgotten).toBe(1);
      expect(report.kept).toBe(3);
      expect(await log.get('tx-old')).toBeUndefined();
      expect(await log.history('tx-old')).toEqual([]);
      expect(await log.history('tx-recent')).toEqual(keptBefore.recent);
      expect((await log.unfinished()).map((s) => s.txId)).toEqual(['tx-open', 'tx-decided']);

      log = await reopen(log);
      expect(await log.get('tx-old')).toBeUndefined();
      expect(await log.history('tx-recent')).toEqual(keptBefore.recent);
      expect(await log.history('tx-open')).toEqual(keptBefore.open);
      expect(await log.history('tx-decided')).toEqual(keptBefore.decided);
      expect((await log.unfinished()).map((s) => s.txId)).toEqual(['tx-open', 'tx-decided']);
    });

    it('a complete record carries the outcome it proves; one without it never proves a commit', async () => {
      let log = await start();
      // A one-phase commit: no decision record, the complete says commit.
      await begin(log, 'tx-one');
      await log.append({ type: 'enlist', txId: 'tx-one', at: clock, branch: branch('tx-one', 1) });
      await log.append({ type: 'complete', txId: 'tx-one', at: clock + 1, outcome: 'commit' });
      // An abort finished by phase 2.
      await begin(log, 'tx-ab');
      await log.decide(decision('tx-ab', 'abort'));
      await log.append({ type: 'complete', txId: 'tx-ab', at: clock + 2, outcome: 'abort' });
      // A bare complete of a transaction the log no longer holds (written after compaction forgot it).
      await log.append({ type: 'complete', txId: 'tx-ghost', at: clock + 3 });
      // An older version's one-phase commit: begin logged, no decision, a bare complete.
      await begin(log, 'tx-legacy');
      await log.append({ type: 'complete', txId: 'tx-legacy', at: clock + 4 });
      for (let round = 0; round < 2; round++) {
        expect(await log.get('tx-one')).toMatchObject({ completed: true, outcome: 'commit' });
        expect((await log.get('tx-one'))!.decision).toBeUndefined();
        expect(await log.get('tx-ab')).toMatchObject({ completed: true, outcome: 'abort' });
        const ghost = await log.get('tx-ghost');
        expect(ghost).toMatchObject({ completed: true });
        expect(ghost!.outcome).toBeUndefined();
        expect(await log.get('tx-legacy')).toMatchObject({ completed: true, outcome: 'commit' });
        expect((await log.history('tx-one')).at(-1)).toEqual({ type: 'complete', txId: 'tx-one', at: clock + 1, outcome: 'commit' });
        log = await reopen(log);
      }
      await expect(log.append({ type: 'complete', txId: 'tx-bad', at: clock, outcome: 'maybe' as never })).rejects.toMatchObject({ code: 'invalid-input' });
    });

    it('within retention, compaction keeps every completed transaction\'s outcome', async () => {
      let log = await start();
      for (let i = 0; i < 6; i++) {
        await begin(log, `tx-k${i}`);
        if (i % 2 === 0) await log.decide(decision(`tx-k${i}`, i % 4 === 0 ? 'abort' : 'commit'));
        await log.append({ type: 'complete', txId: `tx-k${i}`, at: clock + i, outcome: i % 4 === 0 ? 'abort' : 'commit' });
      }
      clock += 30_000;
      await log.compact();
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 6; i++) expect(await log.get(`tx-k${i}`)).toMatchObject({ completed: true, completedAt: 1_700_000_000_000 + i, outcome: i % 4 === 0 ? 'abort' : 'commit' });
        log = await reopen(log);
      }
      clock += 60_000;
      await begin(log, 'tx-later');
      await log.compact();
      for (let i = 0; i < 6; i++) expect(await log.get(`tx-k${i}`)).toBeUndefined();
    });

    it('keeps working after compaction and across reopen after it', async () => {
      let log = await start();
      for (let i = 0; i < 30; i++) {
        await begin(log, `tx-${i}`, clock + i);
        await log.decide(decision(`tx-${i}`, i % 3 === 0 ? 'abort' : 'commit'));
        if (i % 2 === 0) await log.append({ type: 'complete', txId: `tx-${i}`, at: clock });
      }
      clock += 120_000;
      const first = await log.compact();
      expect(first.forgotten).toBe(15);
      await begin(log, 'tx-after');
      await log.decide(decision('tx-after', 'commit'));
      const second = await log.compact();
      expect(second.forgotten).toBe(0);
      log = await reopen(log);
      expect((await log.unfinished()).map((s) => s.txId)).toEqual([...Array.from({ length: 15 }, (_, k) => `tx-${2 * k + 1}`), 'tx-after']);
      expect((await log.get('tx-after'))!.decision!.outcome).toBe('commit');
      expect(await log.get('tx-0')).toBeUndefined();
      await log.append({ type: 'complete', txId: 'tx-after', at: clock });
      log = await reopen(log);
      expect((await log.get('tx-after'))!.completed).toBe(true);
    });

    it('keeps append order when a decision races the appends before it', async () => {
      const log = await start();
      const writes: Promise<unknown>[] = [begin(log, 'tx-mix')];
      for (let i = 1; i <= 3; i++) writes.push(log.append({ type: 'enlist', txId: 'tx-mix', at: clock + i, branch: branch('tx-mix', i) }));
      // Not awaited either: the decision must still land after the records appended before it.
      writes.push(log.decide(decision('tx-mix', 'commit', [branch('tx-mix', 1), branch('tx-mix', 2), branch('tx-mix', 3)])));
      writes.push(log.append({ type: 'hazard', txId: 'tx-mix', at: clock + 5, branchId: 2, gid: branch('tx-mix', 2).gid, participant: 'db2', detail: 'unknown outcome' }));
      await Promise.all(writes);
      await log.append({ type: 'complete', txId: 'tx-mix', at: clock + 6 });
      const expected = ['begin', 'enlist', 'enlist', 'enlist', 'decision', 'hazard', 'complete'];
      expect((await log.history('tx-mix')).map((r) => r.type)).toEqual(expected);
      const reopened = await reopen(log);
      expect((await reopened.history('tx-mix')).map((r) => r.type)).toEqual(expected);
      const snap = await reopened.get('tx-mix');
      expect(snap).toMatchObject({ completed: true, completedAt: clock + 6 });
      expect(snap!.hazards).toHaveLength(1);
    });

    it('history holds exactly what was appended and decided, and nothing once forgotten', async () => {
      const log = await start();
      await begin(log, 'tx-h', clock, { k: 'v' });
      await log.append({ type: 'enlist', txId: 'tx-h', at: clock + 1, branch: branch('tx-h', 1) });
      const d = await log.decide(decision('tx-h', 'abort'));
      await log.decide(decision('tx-h', 'commit')); // loses: adds nothing
      await log.append({ type: 'complete', txId: 'tx-h', at: clock + 2 });
      expect(await log.history('tx-h')).toEqual([
        { type: 'begin', txId: 'tx-h', at: clock, expiresAt: clock + 30_000, metadata: { k: 'v' } },
        { type: 'enlist', txId: 'tx-h', at: clock + 1, branch: branch('tx-h', 1) },
        d,
        { type: 'complete', txId: 'tx-h', at: clock + 2 },
      ]);
      clock += 120_000;
      expect((await log.compact()).forgotten).toBe(1);
      expect(await log.history('tx-h')).toEqual([]);
      expect(await log.get('tx-h')).toBeUndefined();
    });

    if (features.sharedBackend) {
      const leasesOf = (log: DecisionLog) => {
        if (!log.leases) throw new Error(`${name} shares its backend but has no leases`);
        return log.leases;
      };
      const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

      it('leases: increasing fencing tokens, renew, release, and a takeover only once expired (or forced)', async () => {
        const a = await start();
        const b = await start();
        const la = await leasesOf(a).register('coord-a', 'http://127.0.0.1:1', 60_000);
        const lb = await leasesOf(b).register('coord-b', 'http://127.0.0.1:2', 60_000);
        expect(lb.token).toBeGreaterThan(la.token);
        const view = await leasesOf(a).view();
        const mine = view.leases.find((l) => l.token === la.token)!;
        expect(mine).toMatchObject({ name: 'coord-a', url: 'http://127.0.0.1:1' });
        expect(mine.expiresAt).toBeGreaterThan(view.now + 50_000);
        expect(mine.takenOverBy).toBeUndefined();
        expect(await leasesOf(a).renew(la.token, 60_000)).toBe(true);
        // Live: not taken over unless forced.
        expect(await leasesOf(b).takeOver(la.token, lb.token)).toBe(false);
        expect(await leasesOf(b).takeOver(lb.token, lb.token)).toBe(false);
        // Released (graceful stop): expired at once.
        await leasesOf(a).release(la.token);
        expect(await leasesOf(b).takeOver(la.token, lb.token)).toBe(true);
        expect(await leasesOf(b).takeOver(la.token, lb.token)).toBe(false);
        expect(await leasesOf(a).renew(la.token, 60_000)).toBe(false);
        expect((await leasesOf(b).view()).leases.find((l) => l.token === la.token)?.takenOverBy).toBe(lb.token);
        // A restart of the same instance takes over its previous lease at once.
        const b2 = await start();
        const lb2 = await leasesOf(b2).register('coord-b', 'http://127.0.0.1:2', 60_000);
        expect(await leasesOf(b2).takeOver(lb.token, lb2.token, { evenIfLive: true })).toBe(true);
      });

      it('leases: an expired lease is taken over by exactly one of several racing instances', async () => {
        const dead = await start();
        const takers = [await start(), await start(), await start()];
        const ld = await leasesOf(dead).register('dead', 'http://127.0.0.1:1', 50);
        const tokens = await Promise.all(takers.map((t, i) => leasesOf(t).register(`taker-${i}`, `http://127.0.0.1:${10 + i}`, 60_000)));
        await sleep(120);
        const won = await Promise.all(takers.map((t, i) => leasesOf(t).takeOver(ld.token, tokens[i].token)));
        expect(won.filter(Boolean)).toHaveLength(1);
        const by = (await leasesOf(dead).view()).leases.find((l) => l.token === ld.token)?.takenOverBy;
        expect(by).toBe(tokens[won.indexOf(true)].token);
      });

      it('fencing: once its lease is taken over, an instance can write nothing; the taker reads all it wrote before', async () => {
        const old = await start();
        const taker = await start();
        const lo = await leasesOf(old).register('old', 'http://127.0.0.1:1', 60_000);
        const lt = await leasesOf(taker).register('taker', 'http://127.0.0.1:2', 60_000);
        await old.append({ type: 'begin', txId: 'tx-owned', at: clock, expiresAt: clock + 30_000, owner: lo.token });
        await old.append({ type: 'enlist', txId: 'tx-owned', at: clock, branch: branch('tx-owned', 1) });
        expect((await taker.get('tx-owned'))?.owner).toBe(lo.token);
        expect(await leasesOf(taker).takeOver(lo.token, lt.token, { evenIfLive: true })).toBe(true);
        const refused = [
          old.append({ type: 'enlist', txId: 'tx-owned', at: clock, branch: branch('tx-owned', 2) }),
          old.decide(decision('tx-owned', 'commit')),
          old.append({ type: 'complete', txId: 'tx-owned', at: clock }),
          old.decide(decision('tx-other', 'commit')),
        ];
        for (const result of await Promise.allSettled(refused)) {
          expect(result).toMatchObject({ status: 'rejected', reason: { code: 'fenced' } });
        }
        const snapshot = await taker.get('tx-owned');
        expect(snapshot?.branches.map((b) => b.branchId)).toEqual([1]);
        expect(snapshot?.decision).toBeUndefined();
        expect(await taker.get('tx-other')).toBeUndefined();
        // The taker decides; the register is unaffected by the fence.
        expect((await taker.decide(decision('tx-owned', 'abort'))).outcome).toBe('abort');
        // A new lease lets the old process write again.
        await leasesOf(old).register('old', 'http://127.0.0.1:1', 60_000);
        await expect(old.append({ type: 'complete', txId: 'tx-owned', at: clock })).resolves.toBeUndefined();
        expect((await taker.get('tx-owned'))?.completed).toBe(true);
      });

      it('leases: pruning forgets taken-over leases that own no unfinished transaction', async () => {
        const a = await start();
        const b = await start();
        const busy = await leasesOf(a).register('busy', 'http://127.0.0.1:1', 60_000);
        await a.append({ type: 'begin', txId: 'tx-busy', at: clock, expiresAt: clock + 30_000, owner: busy.token });
        const idle = await leasesOf(a).register('idle', 'http://127.0.0.1:1', 60_000);
        const taker = await leasesOf(b).register('taker', 'http://127.0.0.1:2', 60_000);
        expect(await leasesOf(b).takeOver(busy.token, taker.token, { evenIfLive: true })).toBe(true);
        expect(await leasesOf(b).takeOver(idle.token, taker.token, { evenIfLive: true })).toBe(true);
        await sleep(20);
        expect(await leasesOf(b).prune(0)).toBe(1);
        const left = (await leasesOf(b).view()).leases.map((l) => l.token);
        expect(left).toEqual(expect.arrayContaining([busy.token, taker.token]));
        expect(left).not.toContain(idle.token);
      });

      it('two instances on one backend: racing deciders get one winner, and both read it', async () => {
        const a = await start();
        const b = await start();
        const txs = Array.from({ length: 16 }, (_, i) => `tx-shared-${i}`);
        const calls: Promise<DecisionRecord>[] = [];
        for (let round = 0; round < 6; round++) {
          for (const tx of txs) {
            // Interleaved, opposite proposals from the two instances: each coordinator thinks its own wins.
            calls.push(a.decide({ ...decision(tx, round % 2 === 0 ? 'commit' : 'abort'), source: 'engine' }));
            calls.push(b.decide({ ...decision(tx, round % 2 === 0 ? 'abort' : 'commit'), source: 'sweep' }));
          }
        }
        const results = await Promise.all(calls);
        for (const tx of txs) {
          const mine = results.filter((r) => r.txId === tx);
          expect(mine).toHaveLength(12);
          for (const r of mine) expect(r).toEqual(mine[0]);
          for (const log of [a, b]) {
            expect((await log.get(tx))!.decision).toEqual(mine[0]);
            expect((await log.history(tx)).filter((r) => r.type === 'decision')).toHaveLength(1);
          }
        }
      });

      it("two instances on one backend see each other's records, completions and compaction", async () => {
        const a = await start();
        const b = await start();
        await begin(a, 'tx-ab');
        await a.append({ type: 'enlist', txId: 'tx-ab', at: clock + 1, branch: branch('tx-ab', 1) });
        expect((await b.get('tx-ab'))!.branches.map((x) => x.branchId)).toEqual([1]);
        const d = await b.decide({ ...decision('tx-ab', 'abort'), source: 'sweep' });
        expect(await a.decide(decision('tx-ab', 'commit'))).toEqual(d);
        expect((await a.unfinished()).map((s) => s.txId)).toEqual(['tx-ab']);
        await a.append({ type: 'complete', txId: 'tx-ab', at: clock + 2 });
        expect(await b.unfinished()).toEqual([]);
        clock += 120_000;
        expect((await b.compact()).forgotten).toBe(1);
        expect(await a.get('tx-ab')).toBeUndefined();
        expect((await a.compact()).forgotten).toBe(0);
      });
    }

    if (features.crash) {
      it('no acknowledged decision is lost when the backend crashes mid-stream', async () => {
        const log = await start();
        const acked = new Map<string, DecisionRecord>();
        const failures: unknown[] = [];
        let stop = false;
        const workers = Array.from({ length: 48 }, async (_, w) => {
          for (let i = 0; !stop; i++) {
            const tx = `tx-crash-${w}-${i}`;
            try {
              acked.set(tx, await log.decide(decision(tx, i % 3 === 0 ? 'abort' : 'commit')));
            } catch (e) {
              failures.push(e);
            }
          }
        });
        const until = async (cond: () => boolean) => {
          const deadline = Date.now() + 30_000;
          while (!cond()) {
            if (Date.now() > deadline) throw new Error(`timed out (${acked.size} acknowledged, ${failures.length} failed)`);
            await new Promise((r) => setTimeout(r, 5));
          }
        };
        try {
          await until(() => acked.size >= 300);
          await target.crash!();
          // The same instance carries on once the backend is back: nothing failed for good.
          const afterRestart = acked.size;
          await until(() => acked.size >= afterRestart + 300);
        } finally {
          stop = true;
          await Promise.all(workers);
        }
        // A decide in flight at the crash either resolved with the winner or failed with log-unavailable; none guessed.
        for (const e of failures) expect(isTwopcError(e, 'log-unavailable')).toBe(true);
        const reopened = await reopen(log);
        const found = new Map((await reopened.unfinished()).map((s) => [s.txId, s.decision]));
        const lost = [...acked].filter(([tx, d]) => JSON.stringify(found.get(tx)) !== JSON.stringify(d)).map(([tx]) => tx);
        expect(lost).toEqual([]);
        expect(acked.size).toBeGreaterThanOrEqual(600);
      });
    }

    it('rejects malformed input with invalid-input naming the field', async () => {
      const log = await start();
      await expect(log.decide({ ...decision('tx-bad', 'commit'), outcome: 'maybe' as never })).rejects.toMatchObject({ code: 'invalid-input', message: expect.stringContaining('outcome') });
      await expect(log.decide({ ...decision('tx-bad', 'commit'), branches: [{ branchId: -1 } as never] })).rejects.toMatchObject({ code: 'invalid-input', message: expect.stringContaining('branchId') });
      await expect(log.append({ type: 'begin', txId: '', at: clock, expiresAt: clock })).rejects.toMatchObject({ code: 'invalid-input', message: expect.stringContaining('txId') });
      await expect(log.append({ type: 'decision' } as never)).rejects.toMatchObject({ code: 'invalid-input' });
      expect(await log.get('tx-bad')).toBeUndefined();
    });

    it('refuses every call once closed, with log-unavailable', async () => {
      const log = await start();
      await begin(log, 'tx-x');
      await log.close();
      await log.close(); // idempotent
      for (const call of [() => begin(log, 'tx-y'), () => log.decide(decision('tx-x', 'commit')), () => log.get('tx-x'), () => log.unfinished(), () => log.compact()]) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isTwopcError(error, 'log-unavailable')).toBe(true);
      }
    });
  });
}
