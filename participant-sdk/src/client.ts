/**
 * @twopc/participant-sdk/client: the calling side alone (begin, commit and
 * abort a global transaction, pass its id to services), and the protocol's
 * shared types, errors and helpers. Nothing here loads express or needs its
 * types, so an application that only starts transactions installs neither.
 *
 * @example
 * import { CoordinatorClient, withTransaction } from '@twopc/participant-sdk/client';
 * const twopc = new CoordinatorClient({ url: 'http://twopc:7070', token: process.env.TWOPC_API_TOKEN });
 * const { id } = await twopc.begin();
 * await fetch(ordersUrl, { method: 'POST', headers: withTransaction(id) });
 * await twopc.commit(id); // throws TransactionAbortedError if a branch voted no
 */
export { CoordinatorClient } from './coordinator-client';
export type { AbortOptions, Capabilities, CommitOptions, CommitOutcome, CoordinatorClientOptions, OpenedTransaction } from './coordinator-client';
export { transactionIdFrom, withTransaction } from './transaction-header';
export type { RequestWithHeaders } from './transaction-header';
export { silentLogger } from './sdk-logger';
export type { SdkLogger } from './sdk-logger';
export { ERROR_CODES, TransactionAbortedError, TwopcError, errorMessage, isTwopcError } from './errors';
export type { AbortReason, ErrorCode } from './errors';
export { errorFromProblem, httpStatusOf, problemOf, PROBLEM_CONTENT_TYPE } from './problem';
export type { BranchInfo, BranchRef, ParticipantBranchState, PreparedBranch, Vote } from './branch-types';
export * from './wire';
export {
  CARRIED_HEADER,
  carriedRegistrationSchema,
  carriedRequested,
  mintCarriedBranchId,
  mintCarriedTxId,
  REGISTRATION_HEADER,
  registrationFrom,
  registrationHeaderValue,
  registrationSigned,
  signRegistration,
  withCarriedTransaction,
} from './carried-registration';
export type { CarriedCapability, CarriedRegistration } from './carried-registration';
export { signRequest, tokenChecker, verifySignature, SIGNATURE_TOLERANCE_MS } from './signature';
export { buildGid, GID_MAX_BYTES, hasPrefix, isTxId, parseGid, uuidV7Time, validateGid, validatePrefix } from './gid';
export type { ParsedGid } from './gid';
export { currentTraceparent, inSpan, TRACE_ATTRIBUTES, TRACEPARENT_HEADER, tracingActive, withRemoteParent, withTraceparent, withTraceQuery } from './tracing';
export type { SpanOptions, TraceAttributes } from './tracing';
