import { z } from 'zod';
import { MAX_TIMER_MS } from './ports/backoff';
import { TwopcError, validatePrefix } from './ports/protocol';

// A duration: compared with a clock or kept in the deadline queue (which re-arms past a timer's longest delay).
const ms = (name: string, min: number) => z.number({ error: `${name} must be a number of milliseconds` }).int(`${name} must be an integer`).min(min, `${name} must be >= ${min}`);
// A timer's delay: Node runs a longer one after 1 ms (a monthly sweep interval would sweep back to back).
const timerMs = (name: string, min: number) => ms(name, min).max(MAX_TIMER_MS, `${name} must be <= ${MAX_TIMER_MS} (about 24.8 days: the longest delay a Node timer keeps)`);

/** Engine settings. Parsed once by `parseEngineConfig`, frozen, passed in. */
export const engineConfigSchema = z
  .object({
    /** GID prefix of this coordinator cluster; recovery and sweeps touch only GIDs with it. */
    gidPrefix: z.string().default('twopc'),
    defaultTimeoutMs: ms('defaultTimeoutMs', 1).default(30_000),
    maxTimeoutMs: ms('maxTimeoutMs', 1).default(600_000),
    /** How long `commit` waits for phase 2 before answering "committed, phase 2 still retrying". */
    commitWaitMs: timerMs('commitWaitMs', 0).default(5_000),
    sweepIntervalMs: timerMs('sweepIntervalMs', 0).default(10_000),
    /** A prepared branch with no decision is aborted by a sweep only this long after its transaction expired. */
    sweepGraceMs: ms('sweepGraceMs', 0).default(30_000),
    phaseTwoBaseDelayMs: timerMs('phaseTwoBaseDelayMs', 1).default(50),
    phaseTwoMaxDelayMs: timerMs('phaseTwoMaxDelayMs', 1).default(5_000),
    /** Phase-2 work started by recovery and sweeps at once, at most. */
    recoveryConcurrency: z.number().int().min(1, 'recoveryConcurrency must be >= 1').default(64),
    /**
     * Carried registration (docs/protocol.md): a commit (or an abort) may
     * carry its branches' registrations for a transaction id the client
     * minted; the coordinator records them before its first PREPARE (or its
     * abort decision). Off by default; refused on a shared log (several instances).
     */
    carriedRegistration: z.boolean().default(false),
    /** One branch that never prepared: commit it directly, no decision record. */
    onePhaseCommit: z.boolean().default(true),
    /**
     * Memory caps (docs/operations.md, "Memory"): past them a begin is refused
     * with 503 `over-capacity` instead of memory growing without bound.
     * Transactions running here (about 1.4 KiB of heap each, 2–3 KiB of RSS).
     */
    maxActiveTransactions: z.number().int().min(1, 'maxActiveTransactions must be >= 1').default(100_000),
    /** Completed transactions whose outcome the decision log holds in memory for the retention period (file log: about 35 bytes each). */
    maxRememberedOutcomes: z.number().int().min(1, 'maxRememberedOutcomes must be >= 1').default(2_000_000),
  })
  .strict();

export type EngineConfig = Readonly<z.output<typeof engineConfigSchema>>;
export type EngineConfigInput = z.input<typeof engineConfigSchema>;

export function parseEngineConfig(input: EngineConfigInput = {}): EngineConfig {
  const parsed = engineConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.join('.') || '(root)';
    throw new TwopcError('invalid-config', `${field}: ${issue.message}`, { field });
  }
  const config = parsed.data;
  validatePrefix(config.gidPrefix);
  if (config.defaultTimeoutMs > config.maxTimeoutMs) {
    throw new TwopcError('invalid-config', 'defaultTimeoutMs must be <= maxTimeoutMs', { field: 'defaultTimeoutMs' });
  }
  if (config.phaseTwoBaseDelayMs > config.phaseTwoMaxDelayMs) {
    throw new TwopcError('invalid-config', 'phaseTwoBaseDelayMs must be <= phaseTwoMaxDelayMs', { field: 'phaseTwoBaseDelayMs' });
  }
  return Object.freeze(config);
}
