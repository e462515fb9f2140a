import type { CommitProof } from '../../../participant-sdk/src/postgres';

/**
 * The proof the coordinator's own PostgreSQL participants (the in-process
 * `Coordinator`'s databases, `twopc serve`'s `databases` unless its
 * `commitProof` says otherwise) use unless told otherwise. `xid`: no marker
 * row per prepared branch; the engine carries each branch's proof in its
 * commit decision (see the SDK's CommitProof, and README "What a deployment
 * must provide" for what it asks of the databases).
 */
export const DEFAULT_COMMIT_PROOF: CommitProof = 'xid';
