import { loadServiceConfig } from '../assembly/service-config';
import type { AdminBackend } from './admin-backend';
import { CliError, EXIT } from './exit-codes';
import type { LocalNeeds } from './local-admin';

/** The options every operator command takes (see `addTargetOptions`). */
export interface TargetOptions {
  url?: string;
  token?: string;
  config?: string;
  dataDir?: string;
  log?: string;
  json?: boolean;
  quiet?: boolean;
}

/** How long offline work waits for phase 2 by default before leaving the rest to the next start. */
export const DEFAULT_OFFLINE_WAIT_MS = 60_000;

/**
 * Opens the backend a command works through. `--url` (or TWOPC_URL) → online,
 * through the running coordinator's admin API; otherwise offline, on the log
 * (and participant databases) that the configuration of `twopc serve` names.
 */
export async function openBackend(
  opts: TargetOptions,
  needs: LocalNeeds,
  env: NodeJS.ProcessEnv,
  extra: { waitMs?: number; retentionMs?: number } = {},
): Promise<AdminBackend> {
  const url = opts.url ?? (env.TWOPC_URL || undefined);
  if (url !== undefined) {
    if (opts.config !== undefined || opts.dataDir !== undefined || opts.log !== undefined) {
      throw new CliError(EXIT.usage, '--url works through a running coordinator; --config, --data-dir and --log name a log to work on directly: give one or the other');
    }
    if (extra.retentionMs !== undefined) throw new CliError(EXIT.usage, '--retention works offline only: a running coordinator compacts with its own retention');
    const token = opts.token ?? (env.TWOPC_ADMIN_TOKEN || undefined);
    // Each mode loads only its own backend (offline pulls in pg and the log store): a CLI run starts faster.
    const { AdminClient } = await import('./admin-client');
    return new AdminClient({ url, ...(token === undefined ? {} : { token }) });
  }
  if (opts.token !== undefined) throw new CliError(EXIT.usage, '--token is for --url (a running coordinator); offline commands work on the log directly');
  const configEnv = { ...env };
  if (opts.dataDir !== undefined) configEnv.TWOPC_DATA_DIR = opts.dataDir;
  if (opts.log !== undefined) configEnv.TWOPC_LOG = opts.log;
  const config = loadServiceConfig({ ...(opts.config === undefined ? {} : { file: opts.config }), env: configEnv });
  const { LocalAdmin } = await import('./local-admin');
  return LocalAdmin.open({
    config,
    needs,
    waitMs: extra.waitMs ?? DEFAULT_OFFLINE_WAIT_MS,
    ...(extra.retentionMs === undefined ? {} : { retentionMs: extra.retentionMs }),
  });
}
