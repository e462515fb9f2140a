import { PostgresParticipant as SdkPostgresParticipant } from '../../../participant-sdk/src/postgres';
import type { CommitProof, PostgresParticipantOptions } from '../../../participant-sdk/src/postgres';

/**
 * The proof the coordinator's own PostgreSQL participants (the in-process
 * `Coordinator`'s databases, `twopc serve`'s `databases`) use unless told
 * otherwise. `xid`: no marker row per prepared branch; the engine carries
 * each branch's xid in its commit decision (see the SDK's CommitProof).
 */
export const DEFAULT_COMMIT_PROOF: CommitProof = 'xid';

/**
 * The engine sends phase 2 right after its decision, so a branch's
 * connection is kept from PREPARE to COMMIT/ROLLBACK PREPARED (no second
 * checkout); given back after this long if phase 2 went elsewhere.
 */
export const DEFAULT_KEEP_PREPARED_CONNECTION_MS = 5_000;

/**
 * A PostgreSQL database the coordinator reaches directly: the SDK's adapter
 * (the same branch code SDK services run), with the coordinator's defaults:
 * commit proof `xid`, and the connection kept from PREPARE to phase 2. A participant service keeps the SDK's own default (`marker`):
 * its votes travel over the HTTP protocol, which carries no xid.
 *
 * @example
 * const orders = new PostgresParticipant({ name: 'orders', pool: new Pool({ connectionString }) });
 * const coordinator = await Coordinator.start({ log, databases: [orders] });
 */
export class PostgresParticipant extends SdkPostgresParticipant {
  constructor(options: PostgresParticipantOptions) {
    super({
      ...options,
      commitProof: options.commitProof ?? DEFAULT_COMMIT_PROOF,
      keepPreparedConnectionMs: options.keepPreparedConnectionMs ?? DEFAULT_KEEP_PREPARED_CONNECTION_MS,
    });
  }
}
