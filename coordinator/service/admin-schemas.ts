import { z } from 'zod';
import type { LogRecord } from '../engine/ports/decision-log';
import { BRANCH_STATES, MAX_ACTION_NOTE_LENGTH, OPERATOR_ACTIONS, OUTCOMES, TX_STATES } from '../engine/ports/types';
import { RECORD_TYPES } from '../log/record-shape';

/**
 * Messages of the admin API (`/v1/admin`, the `twopc` CLI's online mode).
 * Requests are validated with them; answers are generated from the same
 * shapes into the OpenAPI document, and the CLI checks answers against them.
 */

const waitMs = (max: number) =>
  z.number({ error: 'must be a number of milliseconds' }).int('must be an integer').min(0, 'must be >= 0').max(max, `must be <= ${max}`).optional();

/** Longest an admin call may ask the coordinator to wait for phase 2. */
export const MAX_ADMIN_WAIT_MS = 600_000;

/** `POST /v1/admin/recover`. */
export const recoverRequestSchema = z
  .object({
    /** How long the pass waits for phase 2 before reporting the rest as pending (default: the engine's commitWaitMs). */
    waitMs: waitMs(MAX_ADMIN_WAIT_MS),
  })
  .strict();

/** `POST /v1/admin/transactions/:id/retry`. */
export const retryRequestSchema = z
  .object({
    /** How long to wait for phase 2 to finish (default: the engine's commitWaitMs). */
    waitMs: waitMs(MAX_ADMIN_WAIT_MS),
  })
  .strict();

/** `POST /v1/admin/transactions/:id/resolve`. */
export const resolveRequestSchema = z
  .object({
    /** The operator's decision; refused (409) if it would contradict a recorded one. */
    outcome: z.enum(OUTCOMES, { error: `must be one of ${OUTCOMES.join(', ')}` }),
  })
  .strict();

/** `POST /v1/admin/transactions/:id/settle`. */
export const settleRequestSchema = z
  .object({
    /** How the hazard was reconciled by hand: recorded in the transaction's history. */
    note: z
      .string({ error: 'must be a string' })
      .trim()
      .min(1, 'must say how the hazard was reconciled')
      .max(MAX_ACTION_NOTE_LENGTH, `must be at most ${MAX_ACTION_NOTE_LENGTH} characters`)
      .describe('how the hazard was reconciled by hand (recorded in its history)'),
    /** Undecided transactions: how the branches ended (required); decided ones: if given, must be the decision. */
    outcome: z.enum(OUTCOMES, { error: `must be one of ${OUTCOMES.join(', ')}` }).optional().describe('required for an undecided transaction (a one-phase commit); if given for a decided one, must be its decision'),
  })
  .strict();

/** Calls that take no parameters: a body, if sent, must be an empty object. */
export const emptyRequestSchema = z.object({}).strict();

const iso = z.string().describe('ISO 8601 time');
const branchSchema = z.object({
  branchId: z.number().int(),
  gid: z.string(),
  participant: z.string(),
  url: z.string().optional(),
  xid: z.string().optional().describe("in a decision: the commit proof the branch's yes vote carried (commitProof xid): <system identifier>.<timeline>:<xid8>, or a bare xid8 in records of older versions"),
});
const reasonSchema = z.object({ cause: z.string(), message: z.string(), branchId: z.number().int().optional(), participant: z.string().optional(), sqlState: z.string().optional() });

/** A transaction as the admin API shows it (the engine's TransactionStatus): with its abort reason and heuristic hazards. */
export const transactionStatusSchema = z.object({
  id: z.string(),
  state: z.enum(TX_STATES),
  decision: z.enum(OUTCOMES).nullable(),
  createdAt: iso,
  expiresAt: iso,
  branches: z.array(z.object({ branchId: z.number().int(), gid: z.string(), participant: z.string(), url: z.string().nullable(), state: z.enum(BRANCH_STATES) })),
  reason: reasonSchema.nullable(),
  hazards: z.array(z.object({ branchId: z.number().int(), gid: z.string(), participant: z.string(), detail: z.string(), at: iso })),
  metadata: z.record(z.string(), z.unknown()).nullable(),
});

/** `GET /v1/admin/transactions`. */
export const transactionListSchema = z.object({
  transactions: z.array(transactionStatusSchema).describe('oldest first'),
  truncated: z.boolean().describe('more transactions matched than `offset` + `limit`'),
  total: z.number().int().describe('how many matched in all').optional(),
});

/** One logged event of a transaction, times in ISO 8601 (`at`; a begin's `expiresAt`). */
export const historyEventSchema = z.object({
  type: z.enum(RECORD_TYPES),
  at: iso,
  expiresAt: iso.optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  branch: branchSchema.optional(),
  outcome: z.enum(OUTCOMES).optional(),
  source: z.string().optional().describe('who decided: engine, timeout, recovery, sweep, admin'),
  branches: z.array(branchSchema).optional(),
  reason: reasonSchema.optional(),
  branchId: z.number().int().optional(),
  gid: z.string().optional(),
  participant: z.string().optional(),
  detail: z.string().optional(),
  by: z.string().optional().describe("an operator's action: the name of the token that asked for it; a completion: the operator who settled it (only a settle's completion has one)"),
  action: z.enum(OPERATOR_ACTIONS).optional().describe("an operator's action: what was asked"),
  note: z.string().optional().describe("an operator's action: what the operator wrote of it (a settle's: how the hazard was reconciled)"),
});
export type HistoryEvent = z.infer<typeof historyEventSchema>;

/** `GET /v1/admin/transactions/:id/history`: the audit trail. */
export const historyAnswerSchema = z.object({ id: z.string(), events: z.array(historyEventSchema) });
export type HistoryAnswer = z.infer<typeof historyAnswerSchema>;

const isoTime = (ms: number): string => new Date(ms).toISOString();

/**
 * A transaction's audit trail as the admin API and the CLI show it: every
 * logged record in order, its times in ISO 8601, without the repeated txId.
 * Shared by the HTTP route and the CLI's offline mode so both print the same.
 *
 * @example
 * historyAnswer(id, await engine.history(id)) // { id, events: [{ type: 'begin', at: '2025-…', expiresAt: '…' }, …] }
 */
export function historyAnswer(txId: string, records: readonly LogRecord[]): HistoryAnswer {
  return { id: txId, events: records.map(historyEvent) };
}

function historyEvent(record: LogRecord): HistoryEvent {
  const { txId: _txId, at, ...rest } = record;
  const event = { ...rest, at: isoTime(at) } as HistoryEvent;
  if (record.type === 'begin') event.expiresAt = isoTime(record.expiresAt);
  return event;
}

/** What one recovery pass did (the engine's RecoveryReport). */
export const recoveryReportSchema = z.object({
  unfinished: z.number().int(),
  resumedCommit: z.number().int(),
  resumedAbort: z.number().int(),
  decidedAbort: z.number().int(),
  decidedCommit: z.number().int(),
  completed: z.number().int(),
  pending: z.number().int().describe('still retrying phase 2 in the background'),
  leftForLater: z.number().int().describe('heuristic hazards, or an only branch whose state could not be learned'),
});

/** What `retry` did (the engine's RetryResult). */
export const retryAnswerSchema = z.object({
  txId: z.string(),
  retried: z.boolean().describe('false: nothing to retry (no decision yet, or completed)'),
  decision: z.enum(OUTCOMES).nullable(),
  completed: z.boolean(),
  hazards: z.number().int(),
});

/** What `resolve` did (the engine's ResolveResult). */
export const resolveAnswerSchema = z.object({
  txId: z.string(),
  decision: z.enum(OUTCOMES),
  alreadyDecided: z.boolean().describe('true: this outcome was already recorded (by anyone); false: this call recorded it'),
  completed: z.boolean(),
  hazards: z.number().int(),
});

/** What `settle` did (the engine's SettleResult). */
export const settleAnswerSchema = z.object({
  txId: z.string(),
  outcome: z.enum(OUTCOMES).describe('how it ended: its decision, or the outcome the operator gave an undecided one'),
  finished: z.number().int().describe('branches without a hazard that acknowledged the outcome now'),
  hazards: z.number().int().describe('branches with a hazard (reconciled by hand); their hazard records stay in its history'),
});

/** Prepared branches of our prefix that no running transaction owns. */
export const orphanScanSchema = z.object({
  orphans: z.array(
    z.object({
      participant: z.string(),
      gid: z.string(),
      txId: z.string(),
      branchId: z.number().int(),
      preparedAt: iso,
      decision: z.enum(OUTCOMES).nullable().describe("the log's decision for its transaction; null: undecided or unknown"),
      known: z.boolean().describe('its transaction is in the log'),
    }),
  ),
  unreachable: z.array(z.object({ participant: z.string(), error: z.string() })),
});

/** What ending each orphan did. */
export const orphanRollbackAnswerSchema = z.object({
  results: z.array(
    z.object({
      gid: z.string(),
      txId: z.string(),
      participant: z.string(),
      outcome: z.enum(['rolled-back', 'committed', 'left']),
      detail: z.string().optional(),
    }),
  ),
});

/** `GET /v1/admin/transactions/:id/phase-two`: phase 2 as the instance that drives it sees it. */
export const phaseTwoAnswerSchema = z.object({
  txId: z.string(),
  driving: z.boolean().describe('phase 2 of it is running on this instance'),
  branches: z
    .array(
      z.object({
        branchId: z.number().int(),
        gid: z.string(),
        participant: z.string(),
        failedAttempts: z.number().int().describe('attempts not acknowledged so far'),
        lastError: z.string(),
        lastAttemptAt: iso,
        nextAttemptAt: iso.optional().describe('when the next attempt is due (a retry brings it forward); absent once acknowledged'),
        acknowledgedAt: iso.optional(),
      }),
    )
    .describe('branches whose phase 2 failed at least once during the drive in progress (kept in memory, not in the log)'),
});

/** `GET /v1/admin/whoami`: the operator a token belongs to. */
export const whoAmISchema = z.object({ name: z.string(), role: z.enum(['viewer', 'admin']) });

/** What a compaction forgot and kept. */
export const compactAnswerSchema = z.object({ forgotten: z.number().int(), kept: z.number().int(), bytesBefore: z.number().int(), bytesAfter: z.number().int() });

/** A read-only check of a file log (the VerifyReport of log-verify.ts). */
export const verifyAnswerSchema = z.object({
  dir: z.string(),
  ok: z.boolean().describe('nothing damaged, nothing missing'),
  opens: z.boolean().describe('a start would succeed (at most a torn final record, which it cuts off)'),
  records: z.number().int(),
  files: z.array(z.object({ file: z.string(), kind: z.enum(['snapshot', 'segment']), bytes: z.number().int(), records: z.number().int() })),
  damaged: z.array(z.object({ file: z.string(), offset: z.number().int(), bytes: z.number().int(), reason: z.string(), verdict: z.enum(['torn-tail', 'corrupt']) })),
  missing: z.array(z.string()),
  leftovers: z.array(z.string()),
});

/** The coordinator instances sharing the decision log (the InstancesReport of cluster/instances-report.ts). */
export const instancesReportSchema = z.object({
  store: z.string().describe('the decision log: file (one instance, no leases), postgres or redis'),
  self: z.number().int().nullable().describe("the answering instance's lease token (its fencing token); null on a file log, or while it holds no lease"),
  instances: z.array(
    z.object({
      token: z.number().int().describe('fencing token: one per process start, increasing'),
      name: z.string(),
      url: z.string().describe('where the other instances relay requests for its transactions'),
      expiresAt: iso.describe("when its lease expires unless renewed (the store's clock)"),
      state: z.enum(['self', 'live', 'expired', 'taken-over']),
      takenOverBy: z.number().int().nullable().describe('the lease that owns its transactions now'),
    }),
  ),
});
