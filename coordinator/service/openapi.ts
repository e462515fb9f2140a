import { bodyProblems, idempotencyHeader, idParam, json, listParams, problemResponse, ref, schema } from './openapi-parts';
import {
  beginAnswerSchema,
  beginRequestSchema,
  enlistAnswerSchema,
  enlistRequestSchema,
  IDEMPOTENCY_HEADER,
  problemSchema,
} from '../../participant-sdk/src';
import { adminOpenApiComponents, adminOpenApiPaths } from './openapi-admin';
import { abortAnswerSchema, abortRequestSchema, commitAnswerSchema, commitRequestSchema, healthAnswerSchema, readyAnswerSchema } from './api-schemas';
import { transactionStatusSchema } from './admin-schemas';


/** Problems any `/v1` call may answer. */
const common = {
  '400': problemResponse('invalid input (`invalid-input`, `malformed-json`); `field` names what is wrong'),
  '401': problemResponse('missing or wrong bearer token (`unauthorized`)'),
  '503': problemResponse('recovery not finished (`not-ready`) or shutting down (`shutting-down`)'),
};
const writes = { ...common, ...bodyProblems };
/** The only client errors of the operations endpoints: Node's HTTP server answers them before any route runs, without a body. */
const refusedByServer = { '4XX': { description: 'refused by the HTTP server before any route runs: a malformed request (400) or headers over the limit (431); no body' } };
const idempotencyParam = idempotencyHeader(
  `Repeating a call with the same key (same method, path and body) answers the first answer again, with header \`Idempotent-Replayed: true\`; ` +
    `a different request with the same key is refused with 422. Keys are kept in memory (default 24 h, 10,000 keys) and forgotten on restart. Header name: \`${IDEMPOTENCY_HEADER}\`.`,
);

/**
 * The coordinator API as OpenAPI 3.1 (served at `/openapi.json`). Message
 * schemas are generated from the zod schemas that validate them, so they
 * cannot drift; test/service checks every path here is routed and every
 * route is here.
 */
export function openApiDocument(version: string): object {
  const admin = adminOpenApiComponents();
  return {
    openapi: '3.1.0',
    info: {
      title: 'twopc coordinator',
      version,
      license: { name: 'MIT', identifier: 'MIT' },
      description:
        'Two-phase commit coordinator (SPEC §5). Errors are RFC 9457 problems with a stable `code`. ' +
        '`/v1` needs `Authorization: Bearer <token>` (`/v1/admin` the admin token); `/healthz`, `/readyz`, `/metrics` and `/openapi.json` need none.',
    },
    // Relative: the coordinator that served this document, at whatever address it listens on.
    servers: [{ url: '/', description: 'the coordinator that serves this document' }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, ...admin.securitySchemes },
      schemas: {
        ...admin.schemas,
        BeginRequest: schema(beginRequestSchema, 'input'),
        BeginAnswer: schema(beginAnswerSchema),
        EnlistRequest: schema(enlistRequestSchema, 'input'),
        EnlistAnswer: schema(enlistAnswerSchema),
        // What GET /v1/transactions/{id} and the lists answer (the admin API too): the engine's
        // TransactionStatus, with the abort reason, heuristic hazards and metadata. (The SDK reads a
        // subset of it, transactionAnswerSchema, and ignores the rest.)
        Transaction: schema(transactionStatusSchema),
        TransactionList: {
          type: 'object',
          properties: {
            transactions: { type: 'array', items: ref('Transaction'), description: 'oldest first' },
            truncated: { type: 'boolean', description: 'more transactions matched than `offset` + `limit`' },
            total: { type: 'integer', description: 'how many matched in all' },
          },
          required: ['transactions', 'truncated', 'total'],
          additionalProperties: false,
        },
        CommitRequest: schema(commitRequestSchema, 'input'),
        CommitAnswer: schema(commitAnswerSchema),
        AbortRequest: schema(abortRequestSchema, 'input'),
        AbortAnswer: schema(abortAnswerSchema),
        Health: schema(healthAnswerSchema),
        Ready: schema(readyAnswerSchema),
        Problem: schema(problemSchema.passthrough()),
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/transactions': {
        post: {
          operationId: 'beginTransaction',
          summary: 'Begin a transaction',
          parameters: [idempotencyParam],
          requestBody: { required: false, content: json('BeginRequest') },
          responses: {
            '201': { description: 'begun', content: json('BeginAnswer') },
            ...writes,
            '503': problemResponse(
              'the coordinator is at a memory cap (`over-capacity`: `maxActiveTransactions` running, or `maxRememberedOutcomes` outcomes held for their retention period; retry later), recovery not finished (`not-ready`) or shutting down (`shutting-down`)',
            ),
          },
        },
        get: {
          operationId: 'listTransactions',
          summary: 'List transactions live here or unfinished in the log, oldest first',
          parameters: listParams,
          responses: { '200': { description: 'transactions', content: json('TransactionList') }, ...common },
        },
      },
      '/v1/transactions/{id}': {
        get: {
          operationId: 'getTransaction',
          summary: 'A transaction: state, decision, branches',
          parameters: [idParam],
          responses: { '200': { description: 'the transaction', content: json('Transaction') }, '404': problemResponse('unknown id (`not-found`)'), ...common },
        },
      },
      '/v1/transactions/{id}/branches': {
        post: {
          operationId: 'enlistBranch',
          summary: 'Enlist a branch of a participant service; the coordinator assigns its GID',
          parameters: [idParam, idempotencyParam],
          requestBody: { required: true, content: json('EnlistRequest') },
          responses: {
            '201': {
              description:
                'registered: with `prepare: "eager"` (the default) the registration is written before this answer; with `prepare: "held"` it may still be in flight, and commit waits for it before any PREPARE',
              content: json('EnlistAnswer'),
            },
            '404': problemResponse('no active transaction with this id (`not-found`)'),
            '409': problemResponse('the transaction is no longer active (`state-conflict`, `transaction-aborted`)'),
            ...writes,
          },
        },
      },
      '/v1/capabilities': {
        get: {
          operationId: 'getCapabilities',
          summary: 'What this coordinator offers beyond the baseline protocol (`carriedRegistration`: docs/protocol.md)',
          responses: { '200': { description: 'capabilities; `{}` offers nothing', content: { 'application/json': { schema: { type: 'object' } } } }, ...common },
        },
      },
      '/v1/transactions/{id}/commit': {
        post: {
          operationId: 'commitTransaction',
          summary: 'Run two-phase commit',
          parameters: [idParam, idempotencyParam],
          requestBody: { required: false, content: json('CommitRequest') },
          responses: {
            '200': { description: 'committed, every branch acknowledged', content: json('CommitAnswer') },
            '202': { description: 'commit decision durable; phase 2 still retrying some branch', content: json('CommitAnswer') },
            '404': problemResponse('unknown id (`not-found`)'),
            '409': problemResponse('aborted (`transaction-aborted`, with `state: "aborted"` and `reason`) or not committable (`state-conflict`)'),
            ...writes,
            '503': problemResponse(
              'a one-phase commit\'s outcome is unknown (`outcome-unknown`: the branch is recorded as a heuristic hazard for an operator), recovery not finished (`not-ready`) or shutting down (`shutting-down`)',
            ),
          },
        },
      },
      '/v1/transactions/{id}/abort': {
        post: {
          operationId: 'abortTransaction',
          summary: 'Abort a transaction that has no commit decision; with `registrations`, a carried transaction the coordinator has not recorded yet (docs/protocol.md)',
          parameters: [idParam, idempotencyParam],
          requestBody: { required: false, content: json('AbortRequest') },
          responses: {
            '200': { description: 'aborted (the branches are rolled back: the answer waits up to commitWaitMs for them, phase 2 retries the rest)', content: json('AbortAnswer') },
            '404': problemResponse('unknown id (`not-found`), without `registrations`'),
            '409': problemResponse(
              'already committed, or committing in one phase (`state-conflict`); with `registrations`, also a transaction whose branches are other than those carried (`state-conflict`: nothing is done)',
            ),
            ...writes,
            '400': problemResponse(
              'invalid input (`invalid-input`, `malformed-json`; `field` names what is wrong): with `registrations`, a registration not signed for this transaction (`registrations.<i>.sig`), a URL this coordinator does not call (`registrations.<i>.url`), a foreign GID or participant, a coordinator that does not take carried registration (`registrations`), or an id it may not record (`id`: not a UUID v7 minted within the carried window, or one with an owner tag)',
            ),
            '503': problemResponse(
              'with `registrations` for an id not recorded yet, the coordinator is at a memory cap (`over-capacity`); an undecided transaction whose only branch cannot be asked now (`outcome-unknown`: retry later); recovery not finished (`not-ready`), shutting down (`shutting-down`), the decision log failed (`log-unavailable`)',
            ),
          },
        },
      },
      ...adminOpenApiPaths(),
      '/healthz': { get: { operationId: 'getHealth', summary: 'Liveness', security: [], responses: { '200': { description: 'alive', content: json('Health') }, ...refusedByServer } } },
      '/readyz': {
        get: {
          operationId: 'getReadiness',
          summary: 'Readiness: 200 once recovery has decided every logged transaction',
          security: [],
          responses: { '200': { description: 'ready', content: json('Ready') }, '503': { description: 'recovering or stopping', content: json('Ready') }, ...refusedByServer },
        },
      },
      '/metrics': {
        get: {
          operationId: 'getMetrics',
          summary: 'Prometheus metrics',
          security: [],
          responses: { '200': { description: 'text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } }, ...refusedByServer },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'getOpenApiDocument',
          summary: 'This document',
          security: [],
          responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } }, ...refusedByServer },
        },
      },
    },
  };
}
