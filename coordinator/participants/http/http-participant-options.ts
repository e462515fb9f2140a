/** How the coordinator calls participant services. Validated by the service config; defaults below. */
export interface HttpParticipantOptions {
  /** Shared secret of the `twopc-signature` HMAC (SPEC §6); every call is signed with it. */
  secret: string;
  /** PREPARE; the transaction's own timeout bounds the whole phase 1 as well. */
  prepareTimeoutMs: number;
  /** One commit or rollback attempt; phase 2 retries with backoff after it. */
  phaseTwoTimeoutMs: number;
  /** `GET {url}/branches/{gid}` (recovery asks it of an undecided transaction's only branch; an operator's commit check adds `?observe=1`). */
  statusTimeoutMs: number;
  /** TCP (and TLS) connection set-up. */
  connectTimeoutMs: number;
  /**
   * Connections per participant origin, at most. Large on purpose: a call
   * holds its connection until answered, so a cap near the number of calls
   * in flight makes slow calls hold back fast ones (head-of-line blocking).
   * An origin that stops answering gets far fewer (`unresponsiveProbes`).
   */
  connectionsPerOrigin: number;
  /** Calls in a row without an answer after which an origin counts as unresponsive. */
  unresponsiveAfterFailures: number;
  /** Calls in flight to an unresponsive origin, at most; the others fail at once, unsent (outcome unknown). */
  unresponsiveProbes: number;
  /** An idle kept-alive connection is closed after this (the participant's keep-alive hint may shorten it). */
  keepAliveTimeoutMs: number;
  /** Answers longer than this are treated as invalid (and not read further). */
  maxAnswerBytes: number;
  /** Batch prepare, commit and rollback calls to participants that accept it (docs/protocol.md); off: always the per-call form. */
  batching: boolean;
  /** Calls in one batch, at most (≤ 64, what a participant must take). */
  batchMaxCalls: number;
  /** Batches in flight per participant URL before calls queue for the next one. */
  batchesInFlight: number;
  /** A batch in flight longer than this stops holding back the next one, so a slow call does not stall the calls behind it. */
  batchSlowAfterMs: number;
}

export const HTTP_PARTICIPANT_DEFAULTS: Omit<HttpParticipantOptions, 'secret'> = Object.freeze({
  prepareTimeoutMs: 10_000,
  phaseTwoTimeoutMs: 10_000,
  statusTimeoutMs: 5_000,
  connectTimeoutMs: 5_000,
  connectionsPerOrigin: 256,
  unresponsiveAfterFailures: 3,
  unresponsiveProbes: 2,
  keepAliveTimeoutMs: 10_000,
  maxAnswerBytes: 64 * 1024,
  batching: true,
  batchMaxCalls: 64,
  batchesInFlight: 1,
  batchSlowAfterMs: 50,
});
