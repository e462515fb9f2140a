import { checkConsistency, type CheckInput, type ViolationKind } from '../../chaos/checker';
import type { CoordinatorAnswer } from '../../chaos/coordinator-view';
import type { ClientOutcome, TxKind, TxRecord } from '../../chaos/history';
import type { LedgerSnapshot } from '../../chaos/ledger-state';

/**
 * The checker on hand-made histories and ledger contents: clean ones pass,
 * and each kind of damage is named. (The chaos runs test it against real
 * processes; test/chaos/chaos-negative.test.ts against a broken coordinator.)
 */

const INITIAL = 100;
const ACCOUNTS = 10;

function tx(id: string, outcome: ClientOutcome, kind: TxKind = 'pair', ledgers = [0, 1]): TxRecord {
  return {
    seq: 0,
    id,
    kind,
    mode: 'held',
    legs: ledgers.map((ledger, i) => ({ ledger, leg: i, account: 1, delta: i === 0 ? -(ledgers.length - 1) * 5 : 5 })),
    ledgers,
    ...(kind === 'vote-no' ? { sabotaged: ledgers[1] } : {}),
    begunAt: 0,
    endedAt: 1,
    calls: [],
    commitSent: outcome !== 'failed',
    outcome,
    why: outcome,
  };
}

/** Ledgers holding exactly `applied` (fully), with balances and markers to match. */
function ledgersWith(applied: TxRecord[], ledgerCount = 2): LedgerSnapshot[] {
  const ledgers: LedgerSnapshot[] = Array.from({ length: ledgerCount }, (_, index) => ({
    index,
    name: `ledger_${index}`,
    balanceTotal: ACCOUNTS * INITIAL,
    accounts: ACCOUNTS,
    transfers: new Map(),
    markers: new Map(),
  }));
  for (const t of applied) {
    for (const leg of t.legs) {
      const l = ledgers[leg.ledger];
      l.transfers.set(t.id, [...(l.transfers.get(t.id) ?? []), { leg: leg.leg, account: leg.account, delta: leg.delta }]);
      l.markers.set(t.id, [`twopc_${t.id}_${leg.ledger + 1}`]);
      l.balanceTotal += leg.delta;
    }
  }
  return ledgers;
}

function input(history: TxRecord[], ledgers: LedgerSnapshot[], over: Partial<CheckInput> = {}): CheckInput {
  const coordinator = new Map<string, CoordinatorAnswer>();
  return { history, ledgers, initialBalance: INITIAL, prepared: [], coordinator, unfinished: [], quiescent: true, logVerify: { ok: true, problems: [] }, observations: [], ...over };
}

const kinds = (i: CheckInput): ViolationKind[] => [...new Set(checkConsistency(i).violations.map((v) => v.kind))].sort();

describe('checkConsistency', () => {
  const ok = tx('t-ok', 'ok');
  const failed = tx('t-failed', 'failed');
  const unknownApplied = tx('t-unknown-1', 'unknown', 'triple', [0, 1, 2]);
  const unknownNot = tx('t-unknown-2', 'unknown');

  it('passes a consistent run and counts what it saw', () => {
    const history = [ok, failed, unknownApplied, unknownNot];
    const result = checkConsistency(input(history, ledgersWith([ok, unknownApplied], 3)));
    expect(result.violations).toEqual([]);
    expect(result.stats).toMatchObject({ checked: 4, visible: 2, invisible: 2, total: 3 * ACCOUNTS * INITIAL, expectedTotal: 3 * ACCOUNTS * INITIAL });
  });

  it('finds a commit acknowledged to the client that is not visible', () => {
    expect(kinds(input([ok], ledgersWith([])))).toEqual(['lost-commit']);
  });

  it('finds a transaction the client knows did not commit, yet visible', () => {
    expect(kinds(input([failed], ledgersWith([failed])))).toEqual(['visible-abort']);
  });

  it('finds a transaction applied in some of its ledgers only (and the money it made or lost)', () => {
    const ledgers = ledgersWith([ok]);
    const l1 = ledgers[1];
    l1.balanceTotal -= 5;
    l1.transfers.delete(ok.id);
    l1.markers.delete(ok.id);
    expect(kinds(input([ok], ledgers))).toEqual(['lost-commit', 'money-not-conserved', 'partial-commit']);
  });

  it('finds an unknown outcome applied half-way', () => {
    const ledgers = ledgersWith([unknownApplied], 3);
    ledgers[2].transfers.delete(unknownApplied.id);
    ledgers[2].markers.delete(unknownApplied.id);
    ledgers[2].balanceTotal -= 5;
    expect(kinds(input([unknownApplied], ledgers))).toEqual(['money-not-conserved', 'partial-commit']);
  });

  it('finds a transaction that had to vote no, visible', () => {
    const voteNo = tx('t-vote-no', 'unknown', 'vote-no');
    expect(kinds(input([voteNo], ledgersWith([voteNo])))).toEqual(['vote-no-committed']);
  });

  it('finds balances that moved without a transfer', () => {
    const ledgers = ledgersWith([ok]);
    ledgers[0].balanceTotal += 7;
    expect(kinds(input([ok], ledgers))).toEqual(['ledger-inconsistent', 'money-not-conserved']);
  });

  it('finds rows of a transaction no client ran, and a branch without its marker', () => {
    const stray = tx('t-stray', 'ok');
    const ledgers = ledgersWith([ok, stray]);
    ledgers[0].markers.delete(ok.id);
    expect(kinds(input([ok], ledgers))).toEqual(['marker-mismatch', 'unknown-transaction-visible']);
  });

  it('finds the coordinator disagreeing with the databases', () => {
    const coordinator = new Map<string, CoordinatorAnswer>([
      [unknownNot.id, { found: true, state: 'completed', decision: 'commit', hazards: 0 }],
      [unknownApplied.id, { found: true, state: 'completed', decision: 'abort', hazards: 0 }],
    ]);
    const i = input([unknownNot, unknownApplied], ledgersWith([unknownApplied], 3), { coordinator });
    expect(checkConsistency(i).violations.map((v) => [v.kind, v.txId])).toEqual([
      ['coordinator-disagrees', unknownNot.id],
      ['coordinator-disagrees', unknownApplied.id],
    ]);
  });

  it('reports what was left: prepared branches, unfinished transactions, no quiescence, a damaged log, and the injector\'s findings', () => {
    const i = input([], ledgersWith([]), {
      prepared: [{ cluster: 0, gid: 'twopc_0190a4b0c0d07000800000000000000a_1' }],
      unfinished: [{ id: 'x', state: 'aborted', decision: 'abort', hazards: [{ gid: 'g', detail: 'committed, decision abort' }] }],
      quiescent: false,
      logVerify: { ok: false, problems: ['segment@10: crc mismatch (corrupt)'] },
      observations: [
        { at: 0, kind: 'accepted-on-failed-log', violation: true, detail: 'begin answered 201' },
        { at: 0, kind: 'unexpected-exit', violation: false, detail: 'an anomaly, not a violation' },
      ],
    });
    const { violations } = checkConsistency(i);
    expect([...new Set(violations.map((v) => v.kind))].sort()).toEqual(['accepted-on-failed-log', 'coordinator-unfinished', 'log-damaged', 'not-quiescent', 'prepared-left']);
    expect(violations.find((v) => v.kind === 'prepared-left')?.txId).toBe('0190a4b0-c0d0-7000-8000-00000000000a');
  });
});
