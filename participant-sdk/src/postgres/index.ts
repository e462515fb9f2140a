export { PostgresParticipant } from './postgres-participant';
export type { PostgresParticipantOptions } from './postgres-options';
export { BranchClient } from './branch-client';
export type { BranchQueryable, BranchQueryResult } from './branch-client';
export { BRANCH_PHASES } from './held-branch';
export type { BranchPhase } from './held-branch';
export type { PostgresPool, PostgresPoolClient, PostgresQueryConfig, PostgresQueryResult } from './postgres-pool';
export { classifyPgError, PG_ERROR_KINDS } from './postgres-errors';
export type { PgErrorClass, PgErrorKind } from './postgres-errors';
