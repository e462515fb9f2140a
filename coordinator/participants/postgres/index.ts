export { PostgresParticipant } from './postgres-participant';
export type { PostgresParticipantOptions } from './postgres-options';
export { BranchClient, BRANCH_PHASES } from './branch-client';
export type { BranchPhase, BranchQueryResult } from './branch-client';
export type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from './postgres-pool';
export { classifyPgError, PG_ERROR_KINDS } from './postgres-errors';
export type { PgErrorClass, PgErrorKind } from './postgres-errors';
