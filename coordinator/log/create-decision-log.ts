import { fileURLToPath } from 'node:url';
import { TwopcError } from '../engine/ports/protocol';
import type { DecisionLog } from '../engine/ports/decision-log';
import { FileDecisionLog, type FileDecisionLogOptions } from './file/file-decision-log';
import { PostgresDecisionLog, type PostgresDecisionLogOptions } from './postgres/postgres-decision-log';
import { redactUrl } from './shared-store/redact-url';
import { RedisDecisionLog } from './redis/redis-decision-log';
import type { RedisDecisionLogOptions } from './redis/redis-log-options';

/** Options of {@link createDecisionLog}: shared ones, then per store. */
export interface CreateDecisionLogOptions {
  /** The setting the spec came from, named in errors. Default `log`. */
  field?: string;
  /** PostgreSQL and Redis: start on a server that would not keep an acknowledged decision through a crash, with a loud warning. */
  allowVolatile?: boolean;
  /** Completed transactions are kept this long before compaction may forget them. */
  completedRetentionMs?: number;
  /** Clock for retention. */
  now?: () => number;
  /** PostgreSQL and Redis: where the allowVolatile warning goes (default: `process.emitWarning`). */
  onWarning?: (message: string) => void;
  /** More options for the file store. */
  file?: Omit<FileDecisionLogOptions, 'dir'>;
  /** More options for the PostgreSQL store (`schema` may also come as `?schema=` in the URL). */
  postgres?: Omit<PostgresDecisionLogOptions, 'connectionString'>;
  /** More options for the Redis store (`namespace` may also come as `?namespace=` in the URL). */
  redis?: Omit<RedisDecisionLogOptions, 'url'>;
}

// A scheme of two characters or more: `C:\data` is a (Windows) path, not a scheme.
const SCHEME = /^([a-z][a-z0-9+.-]+):/i;
const ACCEPTED = 'file:<dir> (or a directory path), postgres://…, postgresql://…, redis://… or rediss://…';

function invalid(field: string, problem: string): TwopcError {
  return new TwopcError('invalid-config', `${field} must be ${ACCEPTED}; ${problem}`, { field });
}

/**
 * Takes a store setting (`param`) out of the URL's query, so the driver never
 * sees it; the same setting given in options as well must agree.
 */
function fromQuery(url: URL, param: string, given: string | undefined, field: string): string | undefined {
  const inUrl = url.searchParams.get(param) ?? undefined;
  url.searchParams.delete(param);
  if (inUrl !== undefined && given !== undefined && inUrl !== given) {
    throw new TwopcError('invalid-config', `${field}: ${param} is ${JSON.stringify(inUrl)} in the URL but ${JSON.stringify(given)} in the options; give it once`, { field });
  }
  return given ?? inUrl;
}

function parseUrl(spec: string, field: string): URL {
  try {
    return new URL(spec);
  } catch {
    throw invalid(field, `got ${JSON.stringify(redactUrl(spec))}, which is not a valid URL`);
  }
}

/**
 * Turns a store spec into a decision log (not opened yet: call `open()`).
 *
 * - `file:./data`, `file:///var/lib/twopc` or a bare path `./data`: the file store
 *   (one coordinator process).
 * - `postgres://…` / `postgresql://…`: the PostgreSQL store (several coordinators);
 *   `?schema=twopc` picks the schema.
 * - `redis://…` / `rediss://…`: the Redis store (several coordinators);
 *   `?namespace=prod` picks the key namespace.
 *
 * Anything else throws `invalid-config` naming `options.field`. Store options
 * are validated by the store's constructor, with messages that name them.
 *
 * @example
 * const log = createDecisionLog(process.env.TWOPC_LOG ?? './data', { field: 'TWOPC_LOG', allowVolatile: flags.allowVolatile });
 * await log.open();
 */
export function createDecisionLog(spec: string, options: CreateDecisionLogOptions = {}): DecisionLog {
  const field = options.field ?? 'log';
  if (typeof spec !== 'string' || spec.trim() === '') throw invalid(field, 'got an empty value');
  const s = spec.trim();
  const shared = {
    ...(options.completedRetentionMs !== undefined ? { completedRetentionMs: options.completedRetentionMs } : {}),
    ...(options.now ? { now: options.now } : {}),
  };
  const server = {
    ...shared,
    ...(options.allowVolatile !== undefined ? { allowVolatile: options.allowVolatile } : {}),
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
  };
  const scheme = SCHEME.exec(s)?.[1].toLowerCase();
  switch (scheme) {
    case undefined:
      return new FileDecisionLog({ ...shared, ...options.file, dir: s });
    case 'file': {
      const rest = s.slice('file:'.length);
      if (rest === '') throw invalid(field, 'got "file:" without a directory');
      const dir = rest.startsWith('//') ? fileURLToPath(parseUrl(s, field)) : rest;
      return new FileDecisionLog({ ...shared, ...options.file, dir });
    }
    case 'postgres':
    case 'postgresql': {
      const url = parseUrl(s, field);
      const schema = fromQuery(url, 'schema', options.postgres?.schema, field);
      return new PostgresDecisionLog({ ...server, ...options.postgres, ...(schema !== undefined ? { schema } : {}), connectionString: url.toString() });
    }
    case 'redis':
    case 'rediss': {
      const url = parseUrl(s, field);
      const namespace = fromQuery(url, 'namespace', options.redis?.namespace, field);
      return new RedisDecisionLog({ ...server, ...options.redis, ...(namespace !== undefined ? { namespace } : {}), url: url.toString() });
    }
    default:
      throw invalid(field, `got ${JSON.stringify(redactUrl(s))} (scheme ${scheme}: is not a decision log store)`);
  }
}
