import type Redis from 'ioredis';
import { errorMessage } from '../../engine/ports/protocol';
import { onlineReplicas } from './redis-replicas';

/**
 * What a Redis server says about its persistence, and how it was learned.
 *
 * CONFIG GET is the only place that tells the fsync policy. Where CONFIG is
 * disabled (renamed away, or denied by an ACL, as managed services do), INFO
 * persistence still tells whether an append-only file is on (`aof_enabled`)
 * and whether its last write succeeded (`aof_last_write_status`), but not
 * how often it is fsynced: `always`, `everysec` and `no` look the same there.
 * So INFO can prove a server is NOT durable (no AOF), never that it is.
 */
export interface RedisDurability {
  source: 'CONFIG GET' | 'INFO persistence';
  /** `master`, `slave`, … from INFO replication; undefined if INFO is unavailable too. */
  role?: string;
  /** Replicas online (INFO replication `slaveN:…,state=online`); undefined if INFO is unavailable. */
  replicas?: number;
  /** `redis_version` from INFO server (decides WAIT or WAITAOF); undefined if INFO is unavailable. */
  version?: string;
  appendonly?: string;
  appendfsync?: string;
  noAppendfsyncOnRewrite?: string;
  /** From INFO persistence: `1` or `0`. */
  aofEnabled?: string;
  aofLastWriteStatus?: string;
  /** Why CONFIG GET could not be used, when it could not. */
  configError?: string;
}

/** The verdict: what was found wrong and how to fix it, or undefined when durable. */
export interface DurabilityProblem {
  found: string;
  fix: string;
}

function infoField(info: string, field: string): string | undefined {
  const m = new RegExp(`^${field}:(.*)$`, 'm').exec(info);
  return m?.[1].trim();
}

/** An answer from the server (a refused command), as opposed to a connection failure. */
function isReplyError(e: unknown): boolean {
  return e instanceof Error && e.name === 'ReplyError';
}

async function configValue(redis: Redis, name: string): Promise<string | undefined> {
  const reply = (await redis.config('GET', name)) as unknown as string[];
  return reply[1];
}

/** Asks the server (CONFIG GET, else INFO) how it persists. */
export async function inspectRedisDurability(redis: Redis): Promise<RedisDurability> {
  let role: string | undefined;
  let replicas: number | undefined;
  let version: string | undefined;
  try {
    const replication = await redis.info('replication');
    role = infoField(replication, 'role');
    replicas = onlineReplicas(replication);
    version = infoField(await redis.info('server'), 'redis_version');
  } catch (e) {
    // INFO denied as well: the role stays unknown and the CONFIG answer decides.
    if (!isReplyError(e)) throw e;
  }
  try {
    return {
      source: 'CONFIG GET',
      role,
      replicas,
      version,
      appendonly: await configValue(redis, 'appendonly'),
      appendfsync: await configValue(redis, 'appendfsync'),
      noAppendfsyncOnRewrite: await configValue(redis, 'no-appendfsync-on-rewrite'),
    };
  } catch (e) {
    if (!isReplyError(e)) throw e;
    // Redis 7 appends the arguments ("…, with args beginning with: 'GET' …"): noise in a message.
    const configError = errorMessage(e).replace(/, with args beginning with:.*$/s, '');
    const info = await redis.info('persistence');
    return {
      source: 'INFO persistence',
      role,
      replicas,
      version,
      aofEnabled: infoField(info, 'aof_enabled'),
      aofLastWriteStatus: infoField(info, 'aof_last_write_status'),
      configError,
    };
  }
}

const FIX_AOF = 'set appendonly yes and appendfsync always (in redis.conf, or CONFIG SET appendonly yes, CONFIG SET appendfsync always, then CONFIG REWRITE)';

/**
 * Durable means: a master, with an append-only file fsynced before every
 * reply (`appendfsync always`), also while the AOF is being rewritten
 * (`no-appendfsync-on-rewrite no`). Then a decision the server acknowledged
 * is on disk, and a restart replays it. A failover to a replica is covered
 * by waiting for the replicas (see awaitReplicas), which needs INFO to count them.
 */
export function durabilityProblem(d: RedisDurability): DurabilityProblem | undefined {
  if (d.role !== undefined && d.role !== 'master') {
    return { found: `the server is a replica (INFO replication shows role:${d.role})`, fix: 'connect to the master' };
  }
  const persistence = persistenceProblem(d);
  if (persistence || d.role !== undefined) return persistence;
  return {
    found: 'INFO replication is not available, so the replicas a commit decision must reach before it counts cannot be counted',
    fix: 'let this user run INFO (ACL: +info)',
  };
}

function persistenceProblem(d: RedisDurability): DurabilityProblem | undefined {
  if (d.source === 'CONFIG GET') {
    if (d.appendonly !== 'yes' || d.appendfsync !== 'always') {
      return { found: `CONFIG GET shows appendonly ${d.appendonly ?? '(unset)'}, appendfsync ${d.appendfsync ?? '(unset)'}`, fix: FIX_AOF };
    }
    if (d.noAppendfsyncOnRewrite === 'yes') {
      return {
        found: 'CONFIG GET shows no-appendfsync-on-rewrite yes (no fsync while the AOF is rewritten)',
        fix: 'set no-appendfsync-on-rewrite no (in redis.conf, or CONFIG SET no-appendfsync-on-rewrite no, then CONFIG REWRITE)',
      };
    }
    return undefined;
  }
  const why = `CONFIG GET is not available (${d.configError})`;
  if (d.aofEnabled !== '1') {
    return { found: `${why}, and INFO persistence shows aof_enabled:${d.aofEnabled ?? '(missing)'}: no append-only file`, fix: FIX_AOF };
  }
  return {
    found: `${why}; INFO persistence shows aof_enabled:1, but INFO does not report the fsync policy, so appendfsync always cannot be verified`,
    fix: 'make sure the server runs with appendfsync always, and let this user run CONFIG GET (ACL: +config|get) so twopc can verify it',
  };
}
