import { seededRandom } from '../harness/bank';

/** The two databases every mode moves money between, in canonical lock order. */
export const LEDGERS = ['ledger_a', 'ledger_b'] as const;
export type Ledger = (typeof LEDGERS)[number];

/**
 * One transfer: `delta` is added to `accountA` in ledger_a and subtracted from
 * `accountB` in ledger_b (a negative delta moves money the other way). Every
 * mode runs exactly one UPDATE per ledger for it, ledger_a first.
 */
export interface BankTransfer {
  accountA: number;
  accountB: number;
  delta: number;
}

/** The one statement every mode runs on each ledger. */
export const UPDATE_BALANCE = 'update accounts set balance = balance + $1 where id = $2';

/**
 * Endless stream of random transfers. Small amounts in random directions make
 * a random walk around the initial balance, so the CHECK (balance >= 0) never
 * fires and no mode pays for aborts.
 */
export function transferPlan(seed: number, accounts: number): () => BankTransfer {
  const random = seededRandom(seed);
  const account = () => 1 + Math.floor(random() * accounts);
  return () => {
    const amount = 1 + Math.floor(random() * 5);
    return { accountA: account(), accountB: account(), delta: random() < 0.5 ? amount : -amount };
  };
}
