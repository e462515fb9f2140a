import { createHash } from 'node:crypto';
import type { Answer } from './answer';

/** A key: 1-255 visible ASCII characters (a UUID is the usual choice). */
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export function isIdempotencyKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/** SHA-256 of a request body's exact bytes (taken while it is parsed, so a body is never serialized again). */
export function bodyDigest(raw: Buffer): string {
  return createHash('sha256').update(raw).digest('hex');
}

/** What was asked: method, path and query, and the body's digest. A key is bound to one fingerprint. */
export function requestFingerprint(method: string, url: string, bodyDigestHex: string | undefined): string {
  return createHash('sha256').update(`${method} ${url}\n${bodyDigestHex ?? ''}`).digest('hex');
}

export interface IdempotencyOptions {
  /** How long a key's first answer is replayed. */
  ttlMs: number;
  /** Keys remembered at most; the oldest are forgotten first. */
  maxKeys: number;
  now?: () => number;
}

export type IdempotentResult =
  | { kind: 'first'; answer: Answer }
  | { kind: 'replay'; answer: Answer }
  | { kind: 'reused' };

interface Entry {
  fingerprint: string;
  expiresAt: number;
  answer: Promise<Answer>;
}

/**
 * Idempotency-Key store (SPEC §5): the first call with a key runs; a repeat
 * with the same key and the same request gets the first answer (waiting for
 * it if the first is still running); the same key with a different request
 * is refused (`reused`). Answers of 5xx are not kept: the call did not
 * happen as far as the client can tell, so a repeat runs again.
 *
 * In memory, bounded by `maxKeys` and `ttlMs`, and lost on restart. That is
 * safe here: commit and abort are idempotent by transaction id, enlist in a
 * transaction of a dead process fails (it was presumed aborted), and a begin
 * repeated after a restart starts a new transaction while the first one,
 * whose id the client never learned, is aborted by recovery.
 */
export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(private readonly options: IdempotencyOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Runs `produce` for the first call with `key`. `produce` must not reject (it answers problems). */
  async run(key: string, fingerprint: string, produce: () => Promise<Answer>): Promise<IdempotentResult> {
    this.forgetExpired();
    const existing = this.entries.get(key);
    if (existing) {
      if (existing.fingerprint !== fingerprint) return { kind: 'reused' };
      return { kind: 'replay', answer: await existing.answer };
    }
    const entry: Entry = { fingerprint, expiresAt: this.now() + this.options.ttlMs, answer: produce() };
    this.entries.set(key, entry);
    while (this.entries.size > this.options.maxKeys) this.entries.delete(this.entries.keys().next().value!);
    const answer = await entry.answer;
    if (answer.status >= 500 && this.entries.get(key) === entry) this.entries.delete(key);
    return { kind: 'first', answer };
  }

  get size(): number {
    return this.entries.size;
  }

  /** Entries are in insertion order and share one TTL, so the expired ones are at the front. */
  private forgetExpired(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt > now) break;
      this.entries.delete(key);
    }
  }
}
