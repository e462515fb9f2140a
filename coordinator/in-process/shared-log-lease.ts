import os from 'node:os';
import { z } from 'zod';
import { inProcessLeaseUrl } from '../cluster/lease-kind';
import { Membership } from '../cluster/membership';
import type { EngineConfig } from '../engine/engine-config';
import type { EngineLogger } from '../engine/ports/logger';
import type { TransactionEngine } from '../engine/transaction-engine';
import { errorMessage, TwopcError } from '../engine/ports/protocol';
import type { DecisionLog } from '../engine/ports/decision-log';

/** This process's lease on a shared (PostgreSQL or Redis) decision log. */
export interface InstanceOptions {
  /**
   * The instance's name among the processes sharing the log: give every
   * process that runs at the same time its own. A process started under the
   * name of a previous one takes that one's transactions over at once (a
   * restart). Default: `in-process:<host>:<pid>` (a restart's new process
   * takes the old one's transactions over once its lease expired: see `group`).
   */
  name?: string;
  /**
   * The processes that may take over each other's transactions when one
   * dies: they must reach the same databases. Give every process of one
   * application (same databases) the same group, and different applications
   * different groups. Only processes of the group take this one's
   * transactions over (`twopc serve` instances never do: they may lack its
   * databases, and this process never takes theirs), and requests a serve
   * instance gets for them are answered 503 `owner-unavailable` until one of
   * the group has finished them. Default: the `name` when one is given,
   * else `in-process:<host>` (the application's processes on this host, so a
   * restart takes over its previous process's transactions).
   */
  group?: string;
  /** How long the lease lasts without renewal (a dead process's transactions are taken over this long after its last renewal). Default 10 s. */
  leaseMs?: number;
}

const instanceSchema = z
  .object({
    name: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters').optional(),
    group: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters').optional(),
    leaseMs: z.number().int('must be an integer').min(100, 'must be >= 100').max(300_000, 'must be <= 300000').default(10_000),
  })
  .strict();

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
  const { name, group, leaseMs } = parsed.data;
  // The default name is unique per process: it cannot tell a restart from another process of the app
  // on this host, and a restart takes a live lease of its name over at once (fencing that process).
  // The default group still makes a restart on this host take the old lease over, once it expired.
  const url = inProcessLeaseUrl(group ?? name ?? `in-process:${os.hostname()}`);
  return new Membership({
    leases: log.leases,
    leaseMs,
    unownedAfterMs: config.maxTimeoutMs + config.sweepGraceMs,
    logger,
    identity: () => ({ name: name ?? `in-process:${os.hostname()}:${process.pid}`, url }),
    // Only its group's processes (its own name's previous ones included): they have its databases.
    mayTakeOver: (lease) => lease.url === url,
    onTakeover: () => {
      engine()?.admin.recover().catch((e) => logger.error({ err: errorMessage(e) }, 'recovery of taken-over transactions failed; the sweep tries again'));
    },
    onFenced: () => {
      engine()?.handOver();
    },
  });
}
