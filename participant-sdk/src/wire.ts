/**
 * The wire contract between a twopc coordinator and its participants, and of
 * the coordinator's HTTP API: message types and their runtime validation.
 * Both sides import this one module (the SDK never imports the coordinator;
 * the coordinator imports this file). SPEC §5 and §6.
 */
import { z } from 'zod';

export const TRANSACTION_HEADER = 'twopc-transaction';
export const SIGNATURE_HEADER = 'twopc-signature';
export const IDEMPOTENCY_HEADER = 'idempotency-key';

const GID = /^[a-z][a-z0-9_]{0,62}_[0-9a-f]{32}_[1-9][0-9]{0,8}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const txIdSchema = z.string().regex(UUID, 'must be a lower-case UUID');
export const gidSchema = z.string().max(199, 'must be at most 199 bytes').regex(GID, 'must be <prefix>_<32 hex>_<branch> in [a-z0-9_]');
export const branchIdSchema = z.number().int('must be an integer').min(1, 'must be >= 1').max(999_999_999, 'must be <= 999999999');

// Coordinator → participant (SPEC §6, "Participant wire protocol").

export const branchCallSchema = z.object({ txId: txIdSchema, branchId: branchIdSchema, gid: gidSchema }).strict();
export type BranchCall = z.infer<typeof branchCallSchema>;

export const commitCallSchema = branchCallSchema.extend({ onePhase: z.boolean().optional() }).strict();
export type CommitCall = z.infer<typeof commitCallSchema>;

/**
 * The batched form (docs/protocol.md): several prepare, commit and rollback
 * calls in one signed `POST {url}/batch`, answered with one result per call,
 * in order, each the status and body the per-call route would have answered.
 * Offered only to participants that said at enlistment they accept it.
 */
export const BATCH_FEATURE = 'batch';
export const MAX_BATCH_CALLS = 64;
/**
 * Query parameter of `POST {url}/batch` (signed with the path): the time, in
 * ms, the participant has to run each call of the batch. A call not done by
 * then gets its own 503 result while it runs on, so one slow call does not
 * hold back the others' answers. Absent (an older coordinator): no budget.
 */
export const BATCH_BUDGET_QUERY = 'budgetMs';
/** Vote and refusal reasons on the wire, at most (the coordinator keeps as much). */
export const MAX_REASON_CHARS = 1000;
// The W3C traceparent of the coordinator's span for one batched call (signed with the body): the parent of the participant's span.
const traceparentSchema = z.string().regex(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/, 'must be a W3C traceparent').optional();
export const batchCallSchema = z.discriminatedUnion('op', [
  branchCallSchema.extend({ op: z.literal('prepare'), traceparent: traceparentSchema }).strict(),
  commitCallSchema.extend({ op: z.literal('commit'), traceparent: traceparentSchema }).strict(),
  branchCallSchema.extend({ op: z.literal('rollback'), traceparent: traceparentSchema }).strict(),
]);
export type BatchCall = z.infer<typeof batchCallSchema>;
export const batchRequestSchema = z.object({ calls: z.array(batchCallSchema).min(1, 'must hold a call').max(MAX_BATCH_CALLS, `must hold at most ${MAX_BATCH_CALLS} calls`) }).strict();
export type BatchRequest = z.infer<typeof batchRequestSchema>;
// `op` and `gid` echo the call (optional: a participant that leaves them out is matched by position only).
export const batchResultSchema = z.object({ status: z.number().int().min(100).max(599), body: z.unknown(), op: z.string().optional(), gid: z.string().optional() });
export const batchAnswerSchema = z.object({ results: z.array(batchResultSchema) });
export type BatchAnswer = z.infer<typeof batchAnswerSchema>;

export const prepareAnswerSchema = z.discriminatedUnion('vote', [
  z.object({ vote: z.literal('yes') }),
  z.object({ vote: z.literal('read-only') }),
  z.object({ vote: z.literal('no'), reason: z.string(), sqlState: z.string().optional() }),
]);
export type PrepareAnswer = z.infer<typeof prepareAnswerSchema>;

export const commitAnswerSchema = z.union([
  z.object({ state: z.literal('committed') }),
  z.object({ state: z.literal('rolled-back'), reason: z.string() }),
]);
export type CommitAnswer = z.infer<typeof commitAnswerSchema>;

export const rollbackAnswerSchema = z.object({ state: z.literal('rolled-back') });
export type RollbackAnswer = z.infer<typeof rollbackAnswerSchema>;

export const BRANCH_WIRE_STATES = ['active', 'prepared', 'committed', 'rolled-back', 'unknown'] as const;
export const branchStatusAnswerSchema = z.object({ state: z.enum(BRANCH_WIRE_STATES) });
export type BranchStatusAnswer = z.infer<typeof branchStatusAnswerSchema>;

// Client / participant → coordinator (SPEC §5).

export const TX_WIRE_STATES = ['active', 'preparing', 'committed', 'aborted', 'completed'] as const;
export const LIST_FILTERS = [...TX_WIRE_STATES, 'in-doubt', 'heuristic'] as const;

export const beginRequestSchema = z
  .object({
    timeoutMs: z.number().int('must be an integer').min(1, 'must be >= 1').optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type BeginRequest = z.infer<typeof beginRequestSchema>;

export const beginAnswerSchema = z.object({ id: txIdSchema, state: z.enum(TX_WIRE_STATES), expiresAt: z.string() });
export type BeginAnswer = z.infer<typeof beginAnswerSchema>;

/** When an enlisted branch is prepared: on the coordinator's request (`held`), or at once (`eager`). */
export const PREPARE_TIMINGS = ['held', 'eager'] as const;
export type PrepareTiming = (typeof PREPARE_TIMINGS)[number];

/** Participant names: what the coordinator calls a participant in logs, metrics and GIDs' bookkeeping. */
export const participantNameSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 of [A-Za-z0-9_.-]');

export const enlistRequestSchema = z
  .object({
    participant: participantNameSchema,
    /** Base URL of the participant's router: the coordinator POSTs `{url}/prepare` etc. */
    url: z.string().max(2048).refine((u) => /^https?:\/\/[^\s]+$/.test(u), 'must be an http(s) URL'),
    /**
     * When the branch will be prepared. `held`: only when the coordinator asks
     * (at commit), so the coordinator may answer before the registration is
     * written; commit waits for that write before any PREPARE. `eager`
     * (the default, the safe one): right after this answer, so the
     * coordinator answers only once the registration is written (SPEC §3: a
     * prepared branch is always findable).
     */
    prepare: z
      .enum(PREPARE_TIMINGS)
      .optional()
      .describe(
        'When the branch is prepared. `held`: only when the coordinator asks (the coordinator may answer before the registration is written; commit waits for it). `eager` (default): right after enlisting (the answer waits for the registration to be written).',
      ),
    /**
     * Forms of the participant protocol this participant serves beyond the
     * per-call one (`batch`); a coordinator ignores the names it does not know.
     */
    accepts: z.array(z.string().max(64)).max(16).optional().describe('Protocol forms the participant serves beyond the per-call one (`batch`); unknown names are ignored.'),
  })
  .strict();
export type EnlistRequest = z.infer<typeof enlistRequestSchema>;

export const enlistAnswerSchema = z.object({
  branchId: branchIdSchema,
  gid: gidSchema,
  /** When the transaction expires (ISO 8601): the SDK rolls a branch never asked to prepare back then. Optional: without it the SDK asks `GET /v1/transactions/:id`. */
  expiresAt: z.string().optional(),
});
export type EnlistAnswer = z.infer<typeof enlistAnswerSchema>;

export const transactionAnswerSchema = z.object({
  id: txIdSchema,
  state: z.enum(TX_WIRE_STATES),
  decision: z.enum(['commit', 'abort']).nullable(),
  createdAt: z.string(),
  expiresAt: z.string(),
  branches: z.array(
    z.object({ branchId: branchIdSchema, gid: gidSchema, participant: z.string(), url: z.string().nullable(), state: z.string() }),
  ),
});
export type TransactionAnswer = z.infer<typeof transactionAnswerSchema>;

/** RFC 9457 problem details, with twopc's stable `code`. */
export const problemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  code: z.string(),
  detail: z.string().optional(),
  field: z.string().optional(),
});
export type Problem = z.infer<typeof problemSchema>;

/** The first validation issue as `{ field, message }`, for a 400 that names the field. */
export function firstIssue(error: z.ZodError): { field: string; message: string } {
  const issue = error.issues[0];
  const field = issue.path.map(String).join('.') || '(body)';
  return { field, message: `${field}: ${issue.message}` };
}
