import { registrationSigned } from '../../participant-sdk/src';
import type { CarriedCapability, CarriedRegistration } from '../../participant-sdk/src';
import type { CommitResult } from '../engine/live-transaction';
import type { CarriedBranch, TransactionEngine } from '../engine/transaction-engine';
import { type AbortReason, TwopcError } from '../engine/ports/protocol';
import { type Answer, ok } from './answers';

/** What the carried-registration routes need beyond the engine. */
export interface CarriedDeps {
  engine: TransactionEngine;
  /** Checks and normalizes a participant URL; throws `invalid-input` naming `url`. */
  participantUrl(url: string): string;
  /** What a participant service said of the protocol forms it serves (batching), as an enlist tells it. */
  participantAccepts?(url: string, accepts: readonly string[] | undefined): void;
  /** Checks a registration's signature with the participant secret; absent without a secret (then nothing is carried). */
  registrationSigned?(txId: string, registration: CarriedRegistration): boolean;
}

/** What `GET /v1/capabilities` answers: `carriedRegistration` only when this coordinator takes them. */
export function capabilitiesAnswer(deps: CarriedDeps): Answer {
  const carried: CarriedCapability | undefined =
    deps.registrationSigned && deps.engine.carriesRegistration ? { gidPrefix: deps.engine.config.gidPrefix, timeoutMs: deps.engine.config.defaultTimeoutMs } : undefined;
  return ok(carried ? { carriedRegistration: carried } : {});
}

/**
 * The branches a carried commit or abort names, once each registration is
 * signed with the participant secret by the service that opened it: an API
 * client holds no secret, so it cannot name a participant URL the
 * coordinator would then call with signed requests (an enlist is
 * authenticated by the service's own call; a carried registration by this
 * signature, which binds the transaction id).
 */
function signedBranches(deps: CarriedDeps, txId: string, registrations: readonly CarriedRegistration[]): CarriedBranch[] {
  const signed = deps.registrationSigned;
  if (!signed || !deps.engine.carriesRegistration) {
    throw new TwopcError('invalid-input', 'registrations: this coordinator does not take carried registrations (GET /v1/capabilities)', { field: 'registrations' });
  }
  const branches: CarriedBranch[] = registrations.map((r, i) => {
    if (!signed(txId, r)) throw new TwopcError('invalid-input', `registrations[${i}] is not signed with the participant secret for this transaction`, { field: `registrations.${i}.sig` });
    return { participant: r.participant, url: registeredUrl(deps, r.url, i), branchId: r.branchId, gid: r.gid };
  });
  // Before the coordinator's first call to a branch (a commit's prepare, an abort's rollback), as an enlist's answer is.
  branches.forEach((b, i) => deps.participantAccepts?.(b.url as string, registrations[i].accepts));
  return branches;
}

/** The registration's URL, checked (the allow-list) as an enlist's is; a refusal names the registration it came from. */
function registeredUrl(deps: CarriedDeps, url: string, i: number): string {
  try {
    return deps.participantUrl(url);
  } catch (e) {
    if (e instanceof TwopcError && e.code === 'invalid-input') throw new TwopcError('invalid-input', `registrations[${i}]: ${e.message}`, { ...e.details, field: `registrations.${i}.url` });
    throw e;
  }
}

/** A commit carrying its branches' registrations (signedBranches). */
export async function commitCarried(deps: CarriedDeps, txId: string, registrations: readonly CarriedRegistration[], answerAt: 'completed' | 'decided' | undefined): Promise<CommitResult> {
  return deps.engine.commitCarried(txId, signedBranches(deps, txId, registrations), answerAt ? { answerAt } : {});
}

/** An abort carrying its branches' registrations (signedBranches): rolls back branches the coordinator had not heard of yet. */
export async function abortCarried(deps: CarriedDeps, txId: string, registrations: readonly CarriedRegistration[], reason: Partial<AbortReason>): Promise<{ txId: string; state: 'aborted' }> {
  return deps.engine.abortCarried(txId, signedBranches(deps, txId, registrations), reason);
}

/** The registration check for a participant secret (serve.ts wires it when one is configured). */
export function carriedSignatureCheck(secret: string): (txId: string, registration: CarriedRegistration) => boolean {
  return (txId, registration) => registrationSigned(secret, txId, registration);
}
