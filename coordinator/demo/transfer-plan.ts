/** The two banks, in the order every transfer locks them (see {@link legsInLockOrder}). */
export const BANKS = ['alpha', 'beta'] as const;
export type Bank = (typeof BANKS)[number];

export interface AccountRef {
  bank: Bank;
  account: number;
}

/** One transfer of the demo: `amount` from one bank's account to the other bank's. */
export interface PlannedTransfer {
  index: number;
  from: AccountRef;
  to: AccountRef;
  amount: number;
  /** Made to fail on purpose: more than all the money there is, so the debit is refused and the transfer aborts. */
  overdraft: boolean;
}

export interface PlanOptions {
  transfers: number;
  accounts: number;
  initialBalance: number;
  /** Share of transfers that are overdrafts, spread evenly (0.05: the 20th, 40th, ...). */
  overdraftRate: number;
  random?: () => number;
}

/**
 * The demo's transfers: random accounts, random direction, amounts up to a
 * tenth of an opening balance, and `overdraftRate` of them overdrafts.
 */
export function planTransfers(options: PlanOptions): PlannedTransfer[] {
  const random = options.random ?? Math.random;
  const account = () => 1 + Math.floor(random() * options.accounts);
  const everything = options.initialBalance * options.accounts * BANKS.length;
  const maxAmount = Math.max(1, Math.floor(options.initialBalance / 10));
  return Array.from({ length: options.transfers }, (_, index) => {
    const [fromBank, toBank] = random() < 0.5 ? BANKS : ([...BANKS].reverse() as [Bank, Bank]);
    // Evenly spread: exactly floor(transfers × rate) overdrafts, whatever the count.
    const overdraft = Math.floor((index + 1) * options.overdraftRate) > Math.floor(index * options.overdraftRate);
    return {
      index,
      from: { bank: fromBank, account: account() },
      to: { bank: toBank, account: account() },
      amount: overdraft ? everything + 1 : 1 + Math.floor(random() * maxAmount),
      overdraft,
    };
  });
}

/** A leg of a transfer: the call to one bank's service. */
export interface Leg extends AccountRef {
  kind: 'debit' | 'credit';
  amount: number;
}

/**
 * The two legs in the fixed bank order (alpha, then beta), whichever way the
 * money goes. Each leg locks a row until the transaction ends, and PostgreSQL
 * cannot see a deadlock that spans two databases: locking banks in one order
 * makes such a deadlock impossible.
 */
export function legsInLockOrder(t: PlannedTransfer): Leg[] {
  const legs: Leg[] = [
    { ...t.from, kind: 'debit', amount: t.amount },
    { ...t.to, kind: 'credit', amount: t.amount },
  ];
  return legs.sort((a, b) => BANKS.indexOf(a.bank) - BANKS.indexOf(b.bank));
}
