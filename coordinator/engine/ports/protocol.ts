// The protocol vocabulary the coordinator shares with the participant SDK, which defines it (the SDK never
// imports the coordinator): errors and their codes, GIDs and transaction ids, branch types. Taken from the SDK's public entry.
export { buildGid, ERROR_CODES, errorMessage, GID_MAX_BYTES, hasPrefix, isTwopcError, isTxId, parseGid, TransactionAbortedError, TwopcError, uuidV7Time, validateGid, validatePrefix } from '../../../participant-sdk/src/client';
export type { AbortReason, ErrorCode, ParsedGid, ParticipantBranchState, PreparedBranch } from '../../../participant-sdk/src/client';
// The coordinator's own (the SDK's, plus the xid a yes vote may carry).
export type { BranchInfo, Vote } from './types';
export type { BranchRef } from './participant';
