import { bodyProblems, idempotencyHeader, idParam, json, listParams, problemResponse, schema } from './openapi-parts';
import {
  compactAnswerSchema,
  historyAnswerSchema,
  instancesReportSchema,
  orphanRollbackAnswerSchema,
  orphanScanSchema,
  recoverRequestSchema,
  recoveryReportSchema,
  resolveAnswerSchema,
  resolveRequestSchema,
  retryAnswerSchema,
  retryRequestSchema,
  settleAnswerSchema,
  settleRequestSchema,
  verifyAnswerSchema,
  whoAmISchema,
  phaseTwoAnswerSchema,
} from './admin-schemas';

// The admin part of the OpenAPI document (openapi.ts merges it in). Message
// schemas come from the zod schemas that validate them, as in openapi.ts.

const answer = (description: string, name: string) => ({ description, content: json(name) });

const security = [{ adminBearer: [] }];
const reads = {
  '400': problemResponse('invalid input (`invalid-input`); `field` names what is wrong'),
  '401': problemResponse('missing or wrong admin token, or no admin token configured (`unauthorized`)'),
  '503': problemResponse('recovery not finished (`not-ready`), shutting down (`shutting-down`), or the decision log is unavailable'),
};
const writes = { ...reads, ...bodyProblems, '403': problemResponse('the token is a viewer\'s: it may read, not act (`forbidden`)') };
const idempotencyParam = idempotencyHeader('as on `/v1` (see POST /v1/transactions)');
const notFound = problemResponse('unknown id (`not-found`)');
const emptyBody = { required: false, content: { 'application/json': { schema: { type: 'object', additionalProperties: false } } } };

/** Security scheme and component schemas of the admin API (a transaction and the list are openapi.ts's `Transaction` and `TransactionList`). */
export function adminOpenApiComponents(): { securitySchemes: object; schemas: Record<string, object> } {
  return {
    securitySchemes: {
      adminBearer: {
        type: 'http',
        scheme: 'bearer',
        description: 'an operator token: the admin token (TWOPC_ADMIN_TOKEN) or a named token (`tokens`, TWOPC_TOKENS) whose role is `viewer` (reads only) or `admin` (reads and actions); the API token does not open `/v1/admin`',
      },
    },
    schemas: {
      HistoryAnswer: schema(historyAnswerSchema),
      RecoverRequest: schema(recoverRequestSchema, 'input'),
      RecoveryReport: schema(recoveryReportSchema),
      RetryRequest: schema(retryRequestSchema, 'input'),
      RetryAnswer: schema(retryAnswerSchema),
      ResolveRequest: schema(resolveRequestSchema, 'input'),
      ResolveAnswer: schema(resolveAnswerSchema),
      SettleRequest: schema(settleRequestSchema, 'input'),
      SettleAnswer: schema(settleAnswerSchema),
      OrphanScan: schema(orphanScanSchema),
      InstancesReport: schema(instancesReportSchema),
      OrphanRollbackAnswer: schema(orphanRollbackAnswerSchema),
      CompactAnswer: schema(compactAnswerSchema),
      WhoAmI: schema(whoAmISchema),
      PhaseTwoAnswer: schema(phaseTwoAnswerSchema),
      VerifyReport: schema(verifyAnswerSchema),
    },
  };
}

/** The `/v1/admin` paths: what `twopc <command> --url` calls. */
export function adminOpenApiPaths(): Record<string, object> {
  return {
    '/v1/admin/transactions': {
      get: {
        operationId: 'adminListTransactions',
        summary: 'Admin: list transactions live here or unfinished in the log, oldest first (`heuristic`: those with a heuristic hazard)',
        security,
        parameters: listParams,
        responses: { '200': answer('transactions', 'TransactionList'), ...reads },
      },
    },
    '/v1/admin/transactions/{id}': {
      get: { operationId: 'adminGetTransaction', summary: 'Admin: a transaction, with its branches, abort reason and heuristic hazards', security, parameters: [idParam], responses: { '200': answer('the transaction', 'Transaction'), '404': notFound, ...reads } },
    },
    '/v1/admin/transactions/{id}/history': {
      get: { operationId: 'adminGetHistory', summary: 'Admin: every logged event of a transaction, in order (the audit trail)', security, parameters: [idParam], responses: { '200': answer('the events', 'HistoryAnswer'), '404': notFound, ...reads } },
    },
    '/v1/admin/transactions/{id}/phase-two': {
      get: {
        operationId: 'adminGetPhaseTwo',
        summary: "Admin: phase 2 of a transaction as its owner drives it: each branch whose attempts failed, how often, the last error and when the next attempt is due (memory only; empty once the drive ended)",
        security,
        parameters: [idParam],
        responses: { '200': answer('phase 2 here', 'PhaseTwoAnswer'), '404': notFound, ...reads },
      },
    },
    '/v1/admin/transactions/{id}/retry': {
      post: {
        operationId: 'adminRetry',
        summary: 'Admin: run phase 2 of a decided, unfinished transaction now instead of after its backoff, and wait up to `waitMs` for it',
        security,
        parameters: [idParam, idempotencyParam],
        requestBody: { required: false, content: json('RetryRequest') },
        responses: { '200': answer('what was retried and whether it finished', 'RetryAnswer'), '404': notFound, ...writes },
      },
    },
    '/v1/admin/transactions/{id}/resolve': {
      post: {
        operationId: 'adminResolve',
        summary: "Admin: record an operator's decision through the decision register and apply it; it can never contradict a recorded decision",
        security,
        parameters: [idParam, idempotencyParam],
        requestBody: { required: true, content: json('ResolveRequest') },
        responses: {
          '200': answer('decided (or already decided the same way) and applied', 'ResolveAnswer'),
          '404': problemResponse('no such transaction in the log and no prepared branch of it on any reachable participant (`not-found`)'),
          '409': problemResponse('a different decision is recorded, or the transaction is running here (`state-conflict`)'),
          ...writes,
        },
      },
    },
    '/v1/admin/transactions/{id}/settle': {
      post: {
        operationId: 'adminSettle',
        summary:
          "Admin: end an unfinished transaction with a heuristic hazard that an operator reconciled by hand: its branches without a hazard are finished, then it is completed (stored before the answer); the note is recorded in its history",
        security,
        parameters: [idParam, idempotencyParam],
        requestBody: { required: true, content: json('SettleRequest') },
        responses: {
          '200': answer('settled: completed with its outcome', 'SettleAnswer'),
          '404': notFound,
          '409': problemResponse(
            'completed already, no hazard (retry or resolve it), running or in phase 2 here, a hazard branch still prepared (retry it), a prepared branch not in its commit decision, or an outcome other than its decision or than what its branch proves (`state-conflict`)',
          ),
          ...writes,
          '503': problemResponse(
            'a branch without a hazard did not acknowledge, a hazard branch\'s state cannot be learned, or a database cannot be listed (`participant-unavailable`); owned by another live instance that cannot be reached (`owner-unavailable`); or as for every call: `not-ready`, `shutting-down`, the decision log unavailable',
          ),
        },
      },
    },
    '/v1/admin/recover': {
      post: {
        operationId: 'adminRecover',
        summary: 'Admin: one recovery pass now over every unfinished transaction of the log',
        security,
        parameters: [idempotencyParam],
        requestBody: { required: false, content: json('RecoverRequest') },
        responses: { '200': answer('the pass', 'RecoveryReport'), ...writes },
      },
    },
    '/v1/admin/orphans': {
      get: { operationId: 'adminListOrphans', summary: 'Admin: prepared branches of our GID prefix on the direct participant databases that no transaction running here owns', security, responses: { '200': answer('orphans', 'OrphanScan'), ...reads } },
    },
    '/v1/admin/orphans/rollback': {
      post: {
        operationId: 'adminRollbackOrphans',
        summary: 'Admin: end every orphan through the decision register (rolled back, or committed when its transaction was decided commit)',
        security,
        parameters: [idempotencyParam],
        requestBody: emptyBody,
        responses: { '200': answer('what happened to each', 'OrphanRollbackAnswer'), ...writes },
      },
    },
    '/v1/admin/whoami': {
      get: {
        operationId: 'adminWhoAmI',
        summary: 'Admin: the operator the token belongs to and its role (`viewer` reads; `admin` also acts); the console asks it at sign-in',
        security,
        responses: { '200': answer('the operator', 'WhoAmI'), ...reads },
      },
    },
    '/v1/admin/instances': {
      get: {
        operationId: 'adminListInstances',
        summary: 'Admin: the coordinator instances sharing the decision log, their leases (fencing tokens) and who took over whom; empty on a file log',
        security,
        responses: { '200': answer('the leases, read now', 'InstancesReport'), ...reads },
      },
    },
    '/v1/admin/log/compact': {
      post: { operationId: 'adminCompactLog', summary: 'Admin: forget completed transactions past retention and reclaim log space', security, parameters: [idempotencyParam], requestBody: emptyBody, responses: { '200': answer('compacted', 'CompactAnswer'), ...writes } },
    },
    '/v1/admin/log/verify': {
      get: {
        operationId: 'adminVerifyLog',
        summary: 'Admin: check every record of the file decision log (read-only, no lock); a write in flight can show as a torn tail',
        security,
        responses: {
          '200': answer('the report (damage is reported here, with file and offset, not as an error)', 'VerifyReport'),
          '501': problemResponse('the coordinator does not run on the file log (`not-supported`)'),
          ...reads,
        },
      },
    },
  };
}
