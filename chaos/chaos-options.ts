import { z } from 'zod';
import { PROTOCOL_BREAKS } from '../coordinator/testing/test-switches';
import { FAULT_KINDS } from './fault-schedule';

const int = (field: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.number({ error: `${field} must be a number` }).int(`${field} must be an integer`).min(min, `${field} must be >= ${min}`).max(max, `${field} must be <= ${max}`);

/** Settings of a chaos run; validated once by {@link parseChaosOptions}, then frozen. */
export const chaosOptionsSchema = z
  .object({
    /** Transactions to begin (at least; see minRounds). Default 1000 unless `durationMs` is given. */
    transactions: int('transactions', 1).optional(),
    /** Run the workload this long (whichever of transactions and duration ends first). */
    durationMs: int('duration', 1_000).optional(),
    /** Makes the fault schedule and the workload repeatable. Default: drawn at random and printed. */
    seed: int('seed', 0, 2 ** 32 - 1).optional(),
    ledgers: int('ledgers', 2, 8).default(3),
    /** PostgreSQL clusters the ledger databases are spread over. Default: one per ledger. */
    clusters: int('clusters', 1, 8).optional(),
    /** Concurrent bank clients. */
    workers: int('workers', 1, 64).default(8),
    accountsPerLedger: int('accounts', 10, 1_000_000).default(500),
    /** Transaction timeout the clients ask for. */
    txTimeoutMs: int('tx-timeout', 500, 8_000).default(4_000),
    /** Mean gap between two faults. */
    faultGapMs: int('fault-gap', 50, 600_000).default(1_500),
    /** Keep the workload (and the faults) going until this many full rounds of faults (each holds every kind). */
    minRounds: int('rounds', 0, 10_000).default(0),
    faults: z.array(z.enum(FAULT_KINDS)).default([...FAULT_KINDS]),
    /** Bound on the wait for recovery and sweeps to end everything once the faults stop. */
    settleTimeoutMs: int('settle-timeout', 1_000).default(120_000),
    /** A process or cluster that cannot be started again within this is reported. */
    restartTimeoutMs: int('restart-timeout', 1_000).default(60_000),
    /** Give the coordinator direct connections to the ledger databases, so its own sweeps end branches too. */
    directDatabases: z.boolean().default(true),
    /** Keep the run directory (history, fault log, process logs, decision log) even without violations. */
    keep: z.boolean().default(false),
    /** Where the run directory goes. Default: a new one under the system temp directory. */
    runDir: z.string().min(1).optional(),
    /** TEST ONLY: run against a coordinator with the protocol deliberately broken (a negative control). */
    breakProtocol: z.enum(PROTOCOL_BREAKS).optional(),
  })
  .strict()
  .refine((o) => o.clusters === undefined || o.clusters <= o.ledgers, { message: 'clusters must be <= ledgers', path: ['clusters'] });

export type ChaosOptionsInput = z.input<typeof chaosOptionsSchema>;
export type ChaosOptions = Readonly<z.output<typeof chaosOptionsSchema> & { seed: number; clusters: number }>;

/** Validates once (messages name the option), fills the defaults that depend on others, freezes. */
export function parseChaosOptions(input: ChaosOptionsInput): ChaosOptions {
  const parsed = chaosOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(issue.code === 'unrecognized_keys' ? `unknown option ${issue.keys[0]}` : issue.message);
  }
  const o = parsed.data;
  return Object.freeze({
    ...o,
    transactions: o.transactions ?? (o.durationMs === undefined ? 1_000 : undefined),
    seed: o.seed ?? Math.floor(Math.random() * 2 ** 31),
    clusters: o.clusters ?? o.ledgers,
    faults: Object.freeze([...o.faults]) as typeof o.faults,
  });
}
