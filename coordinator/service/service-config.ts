import fs from 'node:fs';
import { z } from 'zod';
import { EngineConfig, EngineConfigInput, parseEngineConfig } from '../engine/engine-config';
import { TwopcError } from '../errors';

/** `twopc serve` settings: from a JSON file, then overridden by TWOPC_* environment variables. */
export const serviceConfigSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0, 'port must be 0..65535').max(65535, 'port must be 0..65535').default(7070),
    /** Directory of the embedded file decision log. */
    dataDir: z.string().min(1).default('./data'),
    /** Directly reachable participant databases (name → connection string): recovery and sweeps finish their branches. */
    databases: z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'database names must be 1-64 of [A-Za-z0-9_.-]'), z.string().min(1)).default({}),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    /** Engine settings; validated by parseEngineConfig. */
    engine: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export type ServiceConfig = Readonly<Omit<z.output<typeof serviceConfigSchema>, 'engine'> & { engine: EngineConfig }>;

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

/** Loads, merges and validates the configuration once; the result is frozen. Errors name the field. */
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
  if (env.TWOPC_DATABASES) raw.databases = parseDatabases(env.TWOPC_DATABASES);
  if (env.TWOPC_LOG_LEVEL) raw.logLevel = env.TWOPC_LOG_LEVEL;
  if (env.TWOPC_GID_PREFIX) engine.gidPrefix = env.TWOPC_GID_PREFIX;
  raw.engine = engine;
  const parsed = serviceConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.join('.') || '(root)';
    throw new TwopcError('invalid-config', `config ${field}: ${issue.message}`, { field });
  }
  let engineConfig: EngineConfig;
  try {
    engineConfig = parseEngineConfig(parsed.data.engine as EngineConfigInput);
  } catch (e) {
    if (e instanceof TwopcError) throw new TwopcError('invalid-config', `config engine.${e.message}`, { field: `engine.${String(e.details.field)}` });
    throw e;
  }
  return Object.freeze({ ...parsed.data, databases: Object.freeze({ ...parsed.data.databases }), engine: engineConfig });
}
