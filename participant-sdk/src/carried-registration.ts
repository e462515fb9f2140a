import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { TwopcError } from './errors';
import { withTransaction, type RequestWithHeaders } from './transaction-header';

/**
 * Carried registration (docs/protocol.md): the application mints the
 * transaction id, each service opens its branch on the first call and answers
 * a signed registration with its result, and the commit call carries them.
 * This file holds the parts both sides share: the id, the branch id, and the
 * registration's signature.
 */

/** What a service answers for a branch it opened under carried registration; the application's commit carries it unchanged. */
export interface CarriedRegistration {
  participant: string;
  /** The participant's protocol URL (as it would enlist with); the coordinator calls it back there. */
  url: string;
  branchId: number;
  gid: string;
  /** Forms of the protocol the participant serves beyond the per-call one (as an enlist's `accepts`: `batch`). */
  accepts?: string[];
  /** `v1=<hex HMAC-SHA256>` with the participant secret the coordinator shares with it (signRegistration). */
  sig: string;
}

/** A registration as a commit call carries it (the coordinator checks GID, participant and signature). */
export const carriedRegistrationSchema = z
  .object({
    participant: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
    url: z.string().min(1, 'must not be empty').max(2048, 'must be at most 2048 characters'),
    branchId: z.number().int('must be an integer').min(1, 'must be >= 1').max(999_999_999, 'must be <= 999999999'),
    gid: z.string().max(199, 'must be at most 199 bytes'),
    accepts: z.array(z.string().max(40, 'must be at most 40 characters')).max(8, 'must hold at most 8 names').optional(),
    sig: z.string().max(80, 'must be at most 80 characters'),
  })
  .strict();

/** The coordinator's answer at `GET /v1/capabilities` when it takes carried registrations. */
export interface CarriedCapability {
  gidPrefix: string;
  /** The timeout of a carried transaction: a service rolls back its open branch after it (plus a margin) unless asked to prepare. */
  timeoutMs: number;
}

/** The 10 bits (86–95) that mark a coordinator-minted id as carrying its owner's token (coordinator/engine/ports/owned-tx-id.ts). */
const OWNER_TAG = 0x2b5;

/**
 * A transaction id for carried registration: a UUID v7 of this clock that
 * does not carry the coordinators' owner tag (those are theirs; the
 * coordinator refuses a carried commit under one).
 *
 * @example
 * const id = mintCarriedTxId(); // '0193…-7…'
 */
export function mintCarriedTxId(now = Date.now()): string {
  const b = randomBytes(16);
  b.writeUIntBE(now, 0, 6);
  b[6] = 0x70 | (b[6] & 0x0f);
  b[8] = 0x80 | (b[8] & 0x3f);
  // Bits 86–95 (bytes 10–11): never the owner tag.
  if ((((b[10] & 0x03) << 8) | b[11]) === OWNER_TAG) b[11] ^= 0x01;
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A branch id for a branch a service opens on its own: random, so two services of one transaction pick different ones (a clash is refused at commit). */
export function mintCarriedBranchId(): number {
  return randomInt(1, 1_000_000_000);
}

function registrationMac(secret: string, txId: string, r: Omit<CarriedRegistration, 'sig'>): Buffer {
  // Length-prefixed fields: no two different registrations share a signed text.
  const fields = [txId, r.participant, r.url, String(r.branchId), r.gid, (r.accepts ?? []).join(',')].map((f) => `${f.length}:${f}`).join('|');
  return createHmac('sha256', secret).update(`twopc-registration.v1|${fields}`).digest();
}

/** Signs a registration for transaction `txId` with the participant secret. */
export function signRegistration(secret: string, txId: string, r: Omit<CarriedRegistration, 'sig'>): CarriedRegistration {
  return { ...r, sig: `v1=${registrationMac(secret, txId, r).toString('hex')}` };
}

/** Checks a registration's signature in constant time: only a holder of the participant secret can name a participant URL. */
export function registrationSigned(secret: string, txId: string, r: CarriedRegistration): boolean {
  const m = /^v1=([0-9a-f]{64})$/.exec(r.sig);
  if (!m) return false;
  return timingSafeEqual(registrationMac(secret, txId, r), Buffer.from(m[1], 'hex'));
}

/** Request header: the application asks the service to open its branch under carried registration (value `v1`). */
export const CARRIED_HEADER = 'twopc-carried';
/** Response header: the service's registration, base64url of its JSON. */
export const REGISTRATION_HEADER = 'twopc-registration';

/**
 * Headers for a call to a service in a carried transaction: `twopc-transaction`
 * and `twopc-carried`.
 *
 * @example
 * const tx = await twopc.open({ carried: true });
 * const headers = tx.carried ? withCarriedTransaction(tx.id) : withTransaction(tx.id);
 */
export function withCarriedTransaction(txId: string, headers: Record<string, string> = {}): Record<string, string> {
  return { ...withTransaction(txId, headers), [CARRIED_HEADER]: 'v1' };
}

/** Whether an incoming request asks for carried registration. */
export function carriedRequested(req: RequestWithHeaders): boolean {
  return req.headers[CARRIED_HEADER] === 'v1';
}

/** The value of the `twopc-registration` response header for a registration. */
export function registrationHeaderValue(registration: CarriedRegistration): string {
  return Buffer.from(JSON.stringify(registration)).toString('base64url');
}

/**
 * The registration a service answered in `twopc-registration`, or undefined
 * when it answered none (it did not take carried registration: the caller
 * must not commit the transaction as carried).
 */
export function registrationFrom(res: { headers: Record<string, string | string[] | undefined> | Headers }): CarriedRegistration | undefined {
  const headers = res.headers;
  const found = headers instanceof Headers ? headers.get(REGISTRATION_HEADER) : headers[REGISTRATION_HEADER];
  if (found === null || found === undefined) return undefined;
  const raw = Array.isArray(found) ? (found.length === 1 ? found[0] : undefined) : found;
  // Exactly one value, as registrationHeaderValue writes it: base64url without padding. Node and fetch join a
  // header sent twice with ", ", and a lenient base64 decoder skips the comma, so "<registration>, " (a second,
  // empty header) would otherwise decode as the first registration alone.
  if (raw === undefined || !/^[A-Za-z0-9_-]+$/.test(raw)) {
    throw new TwopcError('invalid-input', `${REGISTRATION_HEADER} must be exactly one base64url value (a service answers one registration per call)`, { field: REGISTRATION_HEADER });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw new TwopcError('invalid-input', `${REGISTRATION_HEADER} is not base64url JSON`, { field: REGISTRATION_HEADER });
  }
  const checked = carriedRegistrationSchema.safeParse(parsed);
  if (!checked.success) throw new TwopcError('invalid-input', `${REGISTRATION_HEADER}: ${checked.error.issues[0].message}`, { field: REGISTRATION_HEADER });
  return checked.data;
}
