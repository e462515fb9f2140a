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
 * A PostgreSQL database the coordinator reaches directly: the SDK's adapter
 * (the same branch code SDK services run), with the coordinator's default
 * commit proof. A participant service keeps the SDK's own default (`marker`):
 * its votes travel over the HTTP protocol, which carries no xid.
 *
 * @example
 * const orders = new PostgresParticipant({ name: 'orders', pool: new Pool({ connectionString }) });
 * const coordinator = await Coordinator.start({ log, databases: [orders] });
 */
export class PostgresParticipant extends SdkPostgresParticipant {
  constructor(options: PostgresParticipantOptions) {
    super({ ...options, commitProof: options.commitProof ?? DEFAULT_COMMIT_PROOF });
  }
}
