import { TwopcError } from './errors';

/** PostgreSQL's limit on a GID is 200 bytes including the terminator. */
export const GID_MAX_BYTES = 199;
export const PREFIX_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;
const GID_PATTERN = /^([a-z][a-z0-9_]{0,62})_([0-9a-f]{32})_([1-9][0-9]{0,8})$/;
const TX_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface ParsedGid {
  prefix: string;
  txId: string;
  branchId: number;
}

/** Validates a coordinator-cluster prefix: lower-case letters, digits, `_`; starts with a letter. */
export function validatePrefix(prefix: string): string {
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new TwopcError('invalid-config', `gidPrefix must match ${PREFIX_PATTERN} (got ${JSON.stringify(prefix)})`, { field: 'gidPrefix' });
  }
  return prefix;
}

export function isTxId(value: unknown): value is string {
  return typeof value === 'string' && TX_ID_PATTERN.test(value);
}

/** The only function that builds a GID: `<prefix>_<txid without dashes>_<branch>`. */
export function buildGid(prefix: string, txId: string, branchId: number): string {
  validatePrefix(prefix);
  if (!isTxId(txId)) throw new TwopcError('invalid-input', `txId must be a lower-case UUID (got ${JSON.stringify(txId)})`, { field: 'txId' });
  if (!Number.isSafeInteger(branchId) || branchId < 1 || branchId > 999_999_999) {
    throw new TwopcError('invalid-input', `branchId must be an integer from 1 to 999999999 (got ${branchId})`, { field: 'branchId' });
  }
  return validateGid(`${prefix}_${txId.replace(/-/g, '')}_${branchId}`);
}

/**
 * The only function that admits a GID into SQL. `PREPARE TRANSACTION` and
 * `COMMIT PREPARED` take a literal, not a parameter, so the charset check here
 * is what stands between a caller and SQL injection.
 */
export function validateGid(gid: unknown): string {
  if (typeof gid !== 'string' || Buffer.byteLength(gid) > GID_MAX_BYTES || !GID_PATTERN.test(gid)) {
    throw new TwopcError('invalid-input', `gid must be <prefix>_<32 hex>_<branch> in [a-z0-9_], at most ${GID_MAX_BYTES} bytes`, { field: 'gid' });
  }
  return gid;
}

/** Splits a valid GID; returns undefined for anything that is not one of ours. */
export function parseGid(gid: string): ParsedGid | undefined {
  const m = GID_PATTERN.exec(gid);
  if (!m || Buffer.byteLength(gid) > GID_MAX_BYTES) return undefined;
  const hex = m[2];
  const txId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return { prefix: m[1], txId, branchId: Number(m[3]) };
}

/** Milliseconds since the epoch in a UUID v7 (its first 48 bits): when the coordinator began the transaction. */
export function uuidV7Time(txId: string): number {
  return parseInt(txId.replace(/-/g, '').slice(0, 12), 16);
}

/** True when `gid` is a valid GID of the given prefix (recovery touches only those). */
export function hasPrefix(gid: string, prefix: string): boolean {
  const parsed = parseGid(gid);
  return parsed !== undefined && parsed.prefix === prefix;
}
