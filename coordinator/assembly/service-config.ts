import fs from 'node:fs';
import { z } from 'zod';
import { MAX_BATCH_CALLS, MAX_TIMER_MS } from '../../participant-sdk/src';
import { COMMIT_PROOFS, DEFAULT_MARKER_RETENTION_MS, MIN_MARKER_RETENTION_MS } from '../../participant-sdk/src/postgres';
import { DEFAULT_COMMIT_PROOF } from '../participants/postgres/commit-proof-default';
import { DEFAULT_PRUNE_INTERVAL_MS } from '../participants/postgres/marker-pruning';
import { EngineConfig, EngineConfigInput, parseEngineConfig } from '../engine/engine-config';
import { TwopcError } from '../engine/ports/protocol';
import { HTTP_PARTICIPANT_DEFAULTS } from '../participants/http/http-participant-options';
import { allowListEntryProblem } from '../participants/http/participant-url';
import { OPERATOR_ROLES } from '../service/admin-auth';
import { ADMISSION_DEFAULTS } from '../service/admission';

const MIN_SECRET = 16;

const MEMORY_DEFAULTS = { heapGrowingPercent: 25, collectWhenIdleMs: 10_000 };

/** Environment variables of `http.*` numbers. */
const HTTP_ENV = [
  ['TWOPC_LISTEN_BACKLOG', 'listenBacklog'],
  ['TWOPC_KEEP_ALIVE_TIMEOUT_MS', 'keepAliveTimeoutMs'],
  ['TWOPC_MAX_REQUESTS_IN_PROGRESS', 'maxRequestsInProgress'],
  ['TWOPC_MAX_QUEUED_REQUESTS', 'maxQueuedRequests'],
  ['TWOPC_REQUESTS_PER_TURN', 'requestsPerTurn'],
] as const;
const MEMORY_ENV = [
  ['TWOPC_HEAP_GROWING_PERCENT', 'heapGrowingPercent'],
  ['TWOPC_COLLECT_WHEN_IDLE_MS', 'collectWhenIdleMs'],
] as const;
const secret = (field: string, env: string) =>
  z.string({ error: `${field} (${env}) must be a string` }).min(MIN_SECRET, `${field} (${env}) must be at least ${MIN_SECRET} characters`);
const duration = (field: string, min: number) => z.number({ error: `${field} must be a number of milliseconds` }).int(`${field} must be an integer`).min(min, `${field} must be >= ${min}`);
// Every other setting in ms becomes a timer's delay: Node runs a longer one after 1 ms (a "monthly" interval
// ran back to back), so it is refused with a clear error instead.
const ms = (field: string, min: number) => duration(field, min).max(MAX_TIMER_MS, `${field} must be <= ${MAX_TIMER_MS} (about 24.8 days: the longest delay a Node timer keeps)`);
const count = (field: string, min: number) => z.number({ error: `${field} must be a number` }).int(`${field} must be an integer`).min(min, `${field} must be >= ${min}`);
const d = HTTP_PARTICIPANT_DEFAULTS;

/** `twopc serve` settings: from a JSON file, then overridden by TWOPC_* environment variables. */
export const serviceConfigSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0, 'port must be 0..65535').max(65535, 'port must be 0..65535').default(7070),
    /** Directory of the embedded file decision log. */
    dataDir: z.string().min(1).default('./data'),
    /** The decision log: `file:<dir>` (default: `dataDir`), `postgres://…` or `redis://…` (several coordinators share those). */
    log: z.string().min(1).optional(),
    /**
     * Several instances on a PostgreSQL or Redis log (ignored on a file log).
     * `name`: a restart under the same name takes over the previous process's
     * transactions at once (default: host name and port). `url`: where the
     * other instances relay requests for this instance's transactions
     * (default: http://<host>:<port>). `leaseMs`: a dead instance's
     * transactions are taken over this long after its last renewal.
     */
    instance: z
      .object({
        name: z.string().min(1, 'instance.name must not be empty').max(200, 'instance.name must be at most 200 characters').optional(),
        url: z
          .string()
          .regex(/^https?:\/\/[^\s/]+\/?$/, 'instance.url must be a base URL like http://10.0.0.5:7070 (no path)')
          .optional(),
        leaseMs: ms('instance.leaseMs', 100).max(300_000, 'instance.leaseMs must be <= 300000').default(10_000),
      })
      .strict()
      .default({ leaseMs: 10_000 }),
    /** Start on a PostgreSQL or Redis log that cannot guarantee durable decisions (fsync off, no AOF `appendfsync always`). */
    allowVolatile: z.boolean({ error: 'allowVolatile must be true or false' }).default(false),
    /** Directly reachable participant databases (name → connection string): recovery and sweeps finish their branches. */
    databases: z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'database names must be 1-64 of [A-Za-z0-9_.-]'), z.string().min(1)).default({}),
    /**
     * How those databases prove, after a lost COMMIT PREPARED answer, that a
     * branch committed: `xid` (default: its transaction id in the decision, no
     * marker row) or `marker` (a row per branch; survives failover to an
     * asynchronous standby, restores and long outages: see README).
     */
    commitProof: z.enum(COMMIT_PROOFS, { error: `commitProof must be one of ${COMMIT_PROOFS.join(', ')}` }).default(DEFAULT_COMMIT_PROOF),
    /** How often `twopc_marker` is pruned in those databases (as the SDK's participant services do in theirs); 0 turns it off. */
    pruneIntervalMs: ms('pruneIntervalMs', 0).default(DEFAULT_PRUNE_INTERVAL_MS),
    /** A marker is pruned once its branch's commit is this old: longer than phase 2 can take, outages included. */
    markerRetentionMs: z
      .number({ error: 'markerRetentionMs must be a number of milliseconds' })
      .int('markerRetentionMs must be an integer')
      .min(MIN_MARKER_RETENTION_MS, `markerRetentionMs must be >= ${MIN_MARKER_RETENTION_MS} (1 h): a marker is a commit's proof`)
      .default(DEFAULT_MARKER_RETENTION_MS),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    /** Bearer token of the `/v1` API. Required unless `insecure`, or the listener is loopback-only (then one is generated per run). */
    apiToken: secret('apiToken', 'TWOPC_API_TOKEN').optional(),
    /** Bearer token of admin endpoints; it is accepted on the `/v1` API as well. */
    adminToken: secret('adminToken', 'TWOPC_ADMIN_TOKEN').optional(),
    /**
     * Named tokens of the admin API and the console: a `viewer` reads, an
     * `admin` also acts; the name is recorded as who did each action. The
     * admin token, if any, is one more, named `admin`.
     */
    tokens: z
      .array(
        z
          .object({
            name: z.string({ error: 'tokens[].name must be a string' }).regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'tokens[].name must be 1-64 of [A-Za-z0-9_.@-]'),
            token: secret('tokens[].token', 'TWOPC_TOKENS'),
            role: z.enum(OPERATOR_ROLES, { error: `tokens[].role must be one of ${OPERATOR_ROLES.join(', ')}` }),
          })
          .strict(),
      )
      .default([])
      .superRefine((tokens, ctx) => {
        const names = tokens.map((t) => t.name);
        const dup = names.find((n, i) => names.indexOf(n) !== i);
        if (dup !== undefined) ctx.addIssue({ code: 'custom', message: `tokens: the name ${dup} is given twice` });
        if (new Set(tokens.map((t) => t.token)).size !== tokens.length) ctx.addIssue({ code: 'custom', message: 'tokens: two names share one token' });
      }),
    /** Serve the API without authentication (development only). */
    insecure: z.boolean({ error: 'insecure must be true or false' }).default(false),
    /** Shared secret that signs the coordinator's calls to participant services; without it, branches with a `url` are refused. */
    participantSecret: secret('participantSecret', 'TWOPC_PARTICIPANT_SECRET').optional(),
    /** URL prefixes participant services may enlist with (empty: any http(s) URL). Guards against SSRF by API clients. */
    participantUrlAllowList: z
      .array(z.string().superRefine((entry, ctx) => {
        const problem = allowListEntryProblem(entry);
        if (problem) ctx.addIssue({ code: 'custom', message: `participantUrlAllowList entries ${problem} (got ${JSON.stringify(entry)})` });
      }))
      .default([]),
    participantCalls: z
      .object({
        prepareTimeoutMs: ms('participantCalls.prepareTimeoutMs', 1).default(d.prepareTimeoutMs),
        phaseTwoTimeoutMs: ms('participantCalls.phaseTwoTimeoutMs', 1).default(d.phaseTwoTimeoutMs),
        statusTimeoutMs: ms('participantCalls.statusTimeoutMs', 1).default(d.statusTimeoutMs),
        connectTimeoutMs: ms('participantCalls.connectTimeoutMs', 1).default(d.connectTimeoutMs),
        connectionsPerOrigin: count('participantCalls.connectionsPerOrigin', 1).default(d.connectionsPerOrigin),
        unresponsiveAfterFailures: count('participantCalls.unresponsiveAfterFailures', 1).default(d.unresponsiveAfterFailures),
        unresponsiveProbes: count('participantCalls.unresponsiveProbes', 1).default(d.unresponsiveProbes),
        keepAliveTimeoutMs: ms('participantCalls.keepAliveTimeoutMs', 1).default(d.keepAliveTimeoutMs),
        maxAnswerBytes: count('participantCalls.maxAnswerBytes', 1024).default(d.maxAnswerBytes),
        batching: z.boolean({ error: 'participantCalls.batching must be true or false' }).default(d.batching),
        batchMaxCalls: count('participantCalls.batchMaxCalls', 1).max(MAX_BATCH_CALLS, `participantCalls.batchMaxCalls must be <= ${MAX_BATCH_CALLS}`).default(d.batchMaxCalls),
        batchesInFlight: count('participantCalls.batchesInFlight', 1).default(d.batchesInFlight),
        batchSlowAfterMs: ms('participantCalls.batchSlowAfterMs', 1).default(d.batchSlowAfterMs),
      })
      .strict()
      .default({ ...d }),
    http: z
      .object({
        /** Request bodies above this are refused with 413. */
        bodyLimitBytes: count('http.bodyLimitBytes', 1024).max(16 * 1024 * 1024, 'http.bodyLimitBytes must be <= 16 MiB').default(64 * 1024),
        /** Graceful shutdown waits this long for requests in flight before cutting connections. */
        shutdownTimeoutMs: ms('http.shutdownTimeoutMs', 0).default(15_000),
        /**
         * Connections the kernel queues before the server accepts them: sized
         * for a burst of clients connecting at once (the kernel caps it at
         * net.core.somaxconn). Node's default, 511, drops SYNs when 1,000 connect.
         */
        listenBacklog: count('http.listenBacklog', 1).max(65535, 'http.listenBacklog must be <= 65535').default(4096),
        /**
         * How long an idle kept-alive connection stays open. Node's default, 5 s, made every
         * Prometheus scrape (15 s apart) open a new connection, and a loaded event loop accepts
         * one connection per turn (libuv 1.45+): the scrape waited behind every other new one.
         */
        keepAliveTimeoutMs: ms('http.keepAliveTimeoutMs', 1).max(120_000, 'http.keepAliveTimeoutMs must be <= 120000').default(65_000),
        /** Transaction requests served at once; more wait in arrival order (service/admission.ts). */
        maxRequestsInProgress: count('http.maxRequestsInProgress', 1).default(ADMISSION_DEFAULTS.maxInProgress),
        /** Transaction requests that may wait; past this, 503 over-capacity with Retry-After. */
        maxQueuedRequests: count('http.maxQueuedRequests', 1).default(ADMISSION_DEFAULTS.maxQueued),
        /** Waiting requests started per event-loop turn: timers run between these slices. */
        requestsPerTurn: count('http.requestsPerTurn', 1).default(ADMISSION_DEFAULTS.slice),
      })
      .strict()
      .default({
        bodyLimitBytes: 64 * 1024,
        shutdownTimeoutMs: 15_000,
        listenBacklog: 4096,
        keepAliveTimeoutMs: 65_000,
        maxRequestsInProgress: ADMISSION_DEFAULTS.maxInProgress,
        maxQueuedRequests: ADMISSION_DEFAULTS.maxQueued,
        requestsPerTurn: ADMISSION_DEFAULTS.slice,
      }),
    /** V8's heap, bounded by `twopc serve` itself (service/heap-control.ts). */
    memory: z
      .object({
        /** After each full collection the heap may grow to live × (1 + this / 100) before the next; 0: V8's own factor. */
        heapGrowingPercent: count('memory.heapGrowingPercent', 0).max(1000, 'memory.heapGrowingPercent must be <= 1000').default(MEMORY_DEFAULTS.heapGrowingPercent),
        /** One full collection once no transaction request has started for this long (after some did); 0: never. */
        collectWhenIdleMs: ms('memory.collectWhenIdleMs', 0).default(MEMORY_DEFAULTS.collectWhenIdleMs),
      })
      .strict()
      .default({ ...MEMORY_DEFAULTS }),
    idempotency: z
      .object({
        /** How long an Idempotency-Key's first answer is replayed. */
        ttlMs: duration('idempotency.ttlMs', 1).default(24 * 60 * 60 * 1000),
        /** Keys remembered at most (oldest forgotten first): bounds memory. */
        maxKeys: count('idempotency.maxKeys', 1).default(10_000),
      })
      .strict()
      .default({ ttlMs: 24 * 60 * 60 * 1000, maxKeys: 10_000 }),
    /** Engine settings; validated by parseEngineConfig. */
    engine: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export type ServiceConfig = Readonly<Omit<z.output<typeof serviceConfigSchema>, 'engine'> & { engine: EngineConfig }>;

/** Reads `name:role:token,name:role:token` (TWOPC_TOKENS). */
function parseTokens(value: string): Array<Record<string, string>> {
  return value.split(',').map((s) => s.trim()).filter(Boolean).map((part) => {
    const m = /^([^:]+):([^:]+):(.+)$/.exec(part);
    if (!m) throw new TwopcError('invalid-config', 'TWOPC_TOKENS must be name:role:token[,name:role:token…] (an entry is not)', { field: 'TWOPC_TOKENS' });
    return { name: m[1], role: m[2], token: m[3] };
  });
}

/** Reads `name=url,name=url`. */
function parseDatabases(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new TwopcError('invalid-config', `TWOPC_DATABASES must be name=url[,name=url…] (bad entry ${JSON.stringify(part)})`, { field: 'TWOPC_DATABASES' });
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

function numberFromEnv(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new TwopcError('invalid-config', `${name} must be a number (got ${JSON.stringify(value)})`, { field: name });
  return n;
}

function booleanFromEnv(name: string, value: string): boolean {
  if (/^(1|true|yes)$/i.test(value)) return true;
  if (/^(0|false|no)$/i.test(value)) return false;
  throw new TwopcError('invalid-config', `${name} must be true or false (got ${JSON.stringify(value)})`, { field: name });
}

/** Loads, merges and validates the configuration once; the result is frozen. Errors name the field (never a secret's value). */
export function loadServiceConfig(options: { file?: string; env?: NodeJS.ProcessEnv } = {}): ServiceConfig {
  const env = options.env ?? process.env;
  let raw: Record<string, unknown> = {};
  const file = options.file ?? env.TWOPC_CONFIG;
  if (file) {
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new TwopcError('invalid-config', `cannot read config file ${file}: ${e instanceof Error ? e.message : String(e)}`, { field: 'config' });
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new TwopcError('invalid-config', `config file ${file} must hold a JSON object`, { field: 'config' });
  }
  const engine = { ...((raw.engine as object | undefined) ?? {}) } as Record<string, unknown>;
  if (env.TWOPC_HOST) raw.host = env.TWOPC_HOST;
  if (env.TWOPC_PORT) raw.port = numberFromEnv('TWOPC_PORT', env.TWOPC_PORT);
  if (env.TWOPC_DATA_DIR) raw.dataDir = env.TWOPC_DATA_DIR;
  if (env.TWOPC_LOG) raw.log = env.TWOPC_LOG;
  if (env.TWOPC_ALLOW_VOLATILE) raw.allowVolatile = booleanFromEnv('TWOPC_ALLOW_VOLATILE', env.TWOPC_ALLOW_VOLATILE);
  if (env.TWOPC_DATABASES) raw.databases = parseDatabases(env.TWOPC_DATABASES);
  if (env.TWOPC_COMMIT_PROOF) raw.commitProof = env.TWOPC_COMMIT_PROOF;
  if (env.TWOPC_PRUNE_INTERVAL_MS) raw.pruneIntervalMs = numberFromEnv('TWOPC_PRUNE_INTERVAL_MS', env.TWOPC_PRUNE_INTERVAL_MS);
  if (env.TWOPC_MARKER_RETENTION_MS) raw.markerRetentionMs = numberFromEnv('TWOPC_MARKER_RETENTION_MS', env.TWOPC_MARKER_RETENTION_MS);
  if (env.TWOPC_LOG_LEVEL) raw.logLevel = env.TWOPC_LOG_LEVEL;
  if (env.TWOPC_API_TOKEN) raw.apiToken = env.TWOPC_API_TOKEN;
  if (env.TWOPC_ADMIN_TOKEN) raw.adminToken = env.TWOPC_ADMIN_TOKEN;
  if (env.TWOPC_TOKENS) raw.tokens = parseTokens(env.TWOPC_TOKENS);
  if (env.TWOPC_INSECURE) raw.insecure = booleanFromEnv('TWOPC_INSECURE', env.TWOPC_INSECURE);
  if (env.TWOPC_PARTICIPANT_SECRET) raw.participantSecret = env.TWOPC_PARTICIPANT_SECRET;
  if (env.TWOPC_PARTICIPANT_URL_ALLOW_LIST) raw.participantUrlAllowList = env.TWOPC_PARTICIPANT_URL_ALLOW_LIST.split(',').map((s) => s.trim()).filter(Boolean);
  if (env.TWOPC_GID_PREFIX) engine.gidPrefix = env.TWOPC_GID_PREFIX;
  if (env.TWOPC_MAX_ACTIVE_TRANSACTIONS) engine.maxActiveTransactions = numberFromEnv('TWOPC_MAX_ACTIVE_TRANSACTIONS', env.TWOPC_MAX_ACTIVE_TRANSACTIONS);
  if (env.TWOPC_MAX_REMEMBERED_OUTCOMES) engine.maxRememberedOutcomes = numberFromEnv('TWOPC_MAX_REMEMBERED_OUTCOMES', env.TWOPC_MAX_REMEMBERED_OUTCOMES);
  for (const [name, key] of HTTP_ENV) {
    const value = env[name];
    if (value) raw.http = { ...((raw.http as object | undefined) ?? {}), [key]: numberFromEnv(name, value) };
  }
  for (const [name, key] of MEMORY_ENV) {
    const value = env[name];
    if (value) raw.memory = { ...((raw.memory as object | undefined) ?? {}), [key]: numberFromEnv(name, value) };
  }
  if (env.TWOPC_INSTANCE_NAME || env.TWOPC_INSTANCE_URL || env.TWOPC_LEASE_MS) {
    const instance = { ...((raw.instance as object | undefined) ?? {}) } as Record<string, unknown>;
    if (env.TWOPC_INSTANCE_NAME) instance.name = env.TWOPC_INSTANCE_NAME;
    if (env.TWOPC_INSTANCE_URL) instance.url = env.TWOPC_INSTANCE_URL;
    if (env.TWOPC_LEASE_MS) instance.leaseMs = numberFromEnv('TWOPC_LEASE_MS', env.TWOPC_LEASE_MS);
    raw.instance = instance;
  }
  raw.engine = engine;
  const parsed = serviceConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]].join('.') : issue.path.join('.') || '(root)';
    const message = issue.code === 'unrecognized_keys' ? `unknown setting ${field}` : issue.message;
    throw new TwopcError('invalid-config', `config ${field}: ${message}`, { field });
  }
  let engineConfig: EngineConfig;
  try {
    engineConfig = parseEngineConfig(parsed.data.engine as EngineConfigInput);
  } catch (e) {
    if (e instanceof TwopcError) throw new TwopcError('invalid-config', `config engine.${e.message}`, { field: `engine.${String(e.details.field)}` });
    throw e;
  }
  const data = parsed.data;
  return Object.freeze({
    ...data,
    databases: Object.freeze({ ...data.databases }),
    participantUrlAllowList: Object.freeze([...data.participantUrlAllowList]) as string[],
    tokens: Object.freeze(data.tokens.map((t) => Object.freeze({ ...t }))) as typeof data.tokens,
    participantCalls: Object.freeze({ ...data.participantCalls }),
    http: Object.freeze({ ...data.http }),
    memory: Object.freeze({ ...data.memory }),
    instance: Object.freeze({ ...data.instance }),
    idempotency: Object.freeze({ ...data.idempotency }),
    engine: engineConfig,
  });
}
