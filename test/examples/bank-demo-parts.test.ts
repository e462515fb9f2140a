import { BankState, checkBanks } from '../../coordinator/demo/bank-check';
import { BANKS, legsInLockOrder, planTransfers } from '../../coordinator/demo/transfer-plan';

function bank(name: 'alpha' | 'beta', total: number, txIds: string[], prepared: string[] = []): BankState {
  return { bank: name, balances: [{ account: 1, balance: total }], total, txIds: new Set(txIds), prepared };
}

describe('bank-transfer demo: the plan', () => {
  it('spreads exactly floor(n × rate) overdrafts, each larger than all the money there is', () => {
    const plan = planTransfers({ transfers: 200, accounts: 10, initialBalance: 1_000, overdraftRate: 0.05 });
    const overdrafts = plan.filter((t) => t.overdraft);
    expect(overdrafts).toHaveLength(10);
    for (const t of overdrafts) expect(t.amount).toBeGreaterThan(10 * 1_000 * BANKS.length);
    for (const t of plan.filter((x) => !x.overdraft)) expect(t.amount).toBeLessThanOrEqual(100);
    expect(planTransfers({ transfers: 40, accounts: 10, initialBalance: 1_000, overdraftRate: 0 }).some((t) => t.overdraft)).toBe(false);
  });

  it('calls the banks in one fixed order whichever way the money goes', () => {
    const [toBeta, toAlpha] = [
      { index: 0, from: { bank: 'alpha', account: 1 }, to: { bank: 'beta', account: 2 }, amount: 5, overdraft: false },
      { index: 1, from: { bank: 'beta', account: 2 }, to: { bank: 'alpha', account: 1 }, amount: 5, overdraft: false },
    ] as const;
    expect(legsInLockOrder({ ...toBeta }).map((l) => [l.bank, l.kind])).toEqual([['alpha', 'debit'], ['beta', 'credit']]);
    expect(legsInLockOrder({ ...toAlpha }).map((l) => [l.bank, l.kind])).toEqual([['alpha', 'credit'], ['beta', 'debit']]);
  });
});

describe('bank-transfer demo: the check', () => {
  const told = { committed: ['t1', 't2'], aborted: ['t3'], failures: 0 };

  it('holds when money is conserved and every transfer is in both banks or neither', () => {
    const check = checkBanks([bank('alpha', 990, ['t1', 't2']), bank('beta', 1_010, ['t1', 't2'])], 2_000, told);
    expect(check).toMatchObject({ ok: true, conserved: true, halfApplied: [], lostCommits: [], visibleAborts: [], prepared: [] });
  });

  it('fails on a half-applied transfer, a lost commit, a visible abort, a prepared leftover, or lost money', () => {
    const check = checkBanks([bank('alpha', 990, ['t1', 't3'], ['twopc_x_1']), bank('beta', 1_000, ['t1'])], 2_000, told);
    expect(check).toMatchObject({ ok: false, conserved: false, halfApplied: ['t3'], lostCommits: ['t2'], visibleAborts: ['t3'], prepared: ['alpha:twopc_x_1'] });
  });

  it('fails on unexpected failures even when the invariants hold', () => {
    expect(checkBanks([bank('alpha', 1_000, []), bank('beta', 1_000, [])], 2_000, { committed: [], aborted: [], failures: 1 }).ok).toBe(false);
  });
});
