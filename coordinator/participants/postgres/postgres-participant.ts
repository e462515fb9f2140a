import { PostgresParticipant as SdkPostgresParticipant } from '../../../participant-sdk/src/postgres';
import type { PostgresParticipantOptions } from '../../../participant-sdk/src/postgres';
import { DEFAULT_COMMIT_PROOF } from './commit-proof-default';

export { DEFAULT_COMMIT_PROOF } from './commit-proof-default';

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
