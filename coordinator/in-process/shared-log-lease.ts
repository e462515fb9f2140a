import os from 'node:os';
import { z } from 'zod';
import { Membership } from '../cluster/membership';
import type { EngineConfig } from '../engine/engine-config';
import type { EngineLogger } from '../engine/ports/logger';
import type { TransactionEngine } from '../engine/transaction-engine';
import { errorMessage, TwopcError } from '../engine/ports/protocol';
import type { DecisionLog } from '../engine/ports/decision-log';

/** This process's lease on a shared (PostgreSQL or Redis) decision log. */
export interface InstanceOptions {
  /**
   * The instance's name among the processes sharing the log. A process
   * started under the name of a previous one takes that one's transactions
   * over at once (a restart); give every concurrent process its own.
   * Default: `in-process:<host>:<pid>` (a restart then waits for the old lease to expire).
   */
  name?: string;
  /** How long the lease lasts without renewal (a dead process's transactions are taken over this long after its last renewal). Default 10 s. */
  leaseMs?: number;
}

const instanceSchema = z
  .object({
    name: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters').optional(),
    leaseMs: z.number().int('must be an integer').min(100, 'must be >= 100').max(300_000, 'must be <= 300000').default(10_000),
  })
  .strict();

// Other instances relay requests for this process's transactions to its URL; an
// in-process coordinator serves none, so they answer 503 owner-unavailable until it finishes them.
const UNREACHABLE_URL = 'http://twopc-in-process.invalid';

/**
 * On a shared log the in-process coordinator joins the leases the way
 * `twopc serve` does: it owns the transactions it begins, its recovery and
 * sweeps act only on those (and on those of instances whose lease expired
 * and that it took over), and a process paused past its lease is fenced. Without
 * this, its start-up recovery would abort the live transactions of every
 * other process on the log. A file log is one process's: no lease.
 */
export function sharedLogMembership(
  log: DecisionLog,
  input: InstanceOptions | undefined,
  config: EngineConfig,
  logger: EngineLogger,
  engine: () => TransactionEngine | undefined,
): Membership | undefined {
  const parsed = instanceSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = `instance.${issue.code === 'unrecognized_keys' ? issue.keys[0] : issue.path.map(String).join('.')}`;
    throw new TwopcError('invalid-config', `Coordinator ${field} ${issue.code === 'unrecognized_keys' ? 'is not an option' : issue.message}`, { field });
  }
  if (!log.leases) return undefined;
  const { name = `in-process:${os.hostname()}:${process.pid}`, leaseMs } = parsed.data;
  return new Membership({
    leases: log.leases,
    leaseMs,
    unownedAfterMs: config.maxTimeoutMs + config.sweepGraceMs,
    logger,
    identity: () => ({ name, url: UNREACHABLE_URL }),
    onTakeover: () => {
      engine()?.recover().catch((e) => logger.error({ err: errorMessage(e) }, 'recovery of taken-over transactions failed; the sweep tries again'));
    },
    onFenced: () => {
      engine()?.handOver();
    },
  });
}
