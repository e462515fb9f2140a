import { z } from 'zod';
import type { CrashPoint } from '../coordinator/engine/crash-points';
import { PROTOCOL_BREAKS } from './test-switches';
import { ALL_CRASH_POINTS, ALL_FAULT_KINDS, crashPointsFor, faultKindsFor, FILE_LOG_FAULT_KINDS, SHARED_LOG_FAULT_KINDS } from './fault-schedule';

/** Where the coordinators keep their decisions: the file log of one process, or a log several instances share. */
export const CHAOS_LOGS = ['file', 'postgres', 'redis'] as const;

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
    /** Kinds to inject. Default: every kind that applies to the log (disk faults on the file log, store crashes on a shared one). */
    faults: z.array(z.enum(ALL_FAULT_KINDS)).optional(),
    /** `twopc serve` processes sharing the decision log; more than one needs a shared log. */
    instances: int('instances', 1, 4).default(1),
    /** The decision log: `file` (one process), or `postgres` / `redis` (throwaway servers, shared by the instances). */
    log: z.enum(CHAOS_LOGS, { error: `log must be one of ${CHAOS_LOGS.join(', ')}` }).default('file'),
    /** The instances' lease on a shared log (TWOPC_LEASE_MS): a dead instance is taken over this long after its last renewal. */
    leaseMs: int('lease-ms', 200, 60_000).default(2_000),
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
    /**
     * Carried registration (docs/protocol.md): the coordinator offers it, the clients mint the ids, the
     * services open their branches on the first call and answer signed registrations, the commit carries them.
     */
    carried: z.boolean().default(false),
    /** The crash points `coordinator-crash-point` arms, drawn from the seed. Default: every point the run's flow reaches (crashPointsFor). */
    crashPoints: z.array(z.enum(ALL_CRASH_POINTS as [string, ...string[]])).min(1, 'crash points must not be empty').optional(),
    /** TEST ONLY: run against a coordinator with the protocol deliberately broken (a negative control). */
    breakProtocol: z.enum(PROTOCOL_BREAKS).optional(),
  })
  .strict()
  .refine((o) => o.clusters === undefined || o.clusters <= o.ledgers, { message: 'clusters must be <= ledgers', path: ['clusters'] })
  .refine((o) => o.instances === 1 || o.log !== 'file', { message: 'instances > 1 needs a shared log: --log postgres or --log redis (the file log is one process\'s)', path: ['instances'] })
  .refine((o) => !o.carried || o.log === 'file', { message: 'carried registration is offered on a single-instance log only: --carried needs the file log', path: ['carried'] })
  .refine((o) => o.log === 'file' || !o.faults?.some((k) => (FILE_LOG_FAULT_KINDS as readonly string[]).includes(k)), { message: 'disk faults (disk-full, disk-io-error) need the file log', path: ['faults'] })
  .refine((o) => o.log !== 'file' || !o.faults?.some((k) => (SHARED_LOG_FAULT_KINDS as readonly string[]).includes(k)), { message: 'store-crash needs a shared log (--log postgres or --log redis)', path: ['faults'] });

export type ChaosOptionsInput = z.input<typeof chaosOptionsSchema>;
type ParsedOptions = z.output<typeof chaosOptionsSchema>;
export type ChaosOptions = Readonly<Omit<ParsedOptions, 'faults' | 'crashPoints'> & { seed: number; clusters: number; faults: NonNullable<ParsedOptions['faults']>; crashPoints: readonly CrashPoint[] }>;
export type ChaosLog = (typeof CHAOS_LOGS)[number];

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
    faults: Object.freeze([...(o.faults ?? faultKindsFor(o.log))]) as NonNullable<ParsedOptions['faults']>,
    crashPoints: Object.freeze([...((o.crashPoints as CrashPoint[] | undefined) ?? crashPointsFor(o.carried))]),
  });
}
