import { renderList, renderShow } from '../../coordinator/cli/render-transactions';
import type { TransactionStatus } from '../../coordinator/engine/transaction-status';

// A branch whose hazard phase 2 met twice (a retry, a sweep) has two hazard records: the CLI counts branches.
const hazard = (at: string) => ({ branchId: 2, gid: 'twopc_x_2', participant: 'ledger_b', detail: 'no such prepared transaction', at });
const tx: TransactionStatus = {
  id: '01930000-0000-7000-8000-000000000001',
  state: 'committed',
  decision: 'commit',
  createdAt: '2026-12-03T10:00:00.000Z',
  expiresAt: '2026-12-03T10:01:00.000Z',
  branches: [
    { branchId: 1, gid: 'twopc_x_1', participant: 'ledger_a', url: null, state: 'committed' },
    { branchId: 2, gid: 'twopc_x_2', participant: 'ledger_b', url: null, state: 'heuristic-hazard' },
  ],
  reason: null,
  hazards: [hazard('2026-12-03T10:00:01.000Z'), hazard('2026-12-03T10:05:00.000Z')],
  metadata: null,
};

describe('the CLI counts hazard branches, not hazard records', () => {
  it('list: the HAZARDS column', () => {
    expect(renderList({ transactions: [tx], truncated: false, total: 1 }, undefined)).toMatch(/ !! 1\n!! 1 transaction\(s\) with a HEURISTIC HAZARD/);
  });

  it('show: the count, and each record still listed', () => {
    const text = renderShow(tx);
    expect(text).toMatch(/!! HEURISTIC HAZARD: 1 branch\(es\) ended differently/);
    expect(text.match(/!! {3}branch 2 on ledger_b/g)).toHaveLength(2);
  });
});
