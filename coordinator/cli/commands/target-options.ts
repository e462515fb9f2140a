import { Command, InvalidArgumentError } from 'commander';
import { isTxId } from '../../engine/ports/protocol';
import { MAX_ADMIN_WAIT_MS } from '../../service/admin-schemas';
import { CliError, EXIT } from '../exit-codes';

/**
 * Adds the options every operator command shares: which coordinator (online
 * `--url`, or offline `--config` / `--data-dir`) and how to print.
 */
export function addTargetOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'online: work through the running coordinator at this URL (TWOPC_URL)')
    .option('--token <token>', 'online: the admin token (TWOPC_ADMIN_TOKEN; prefer the variable: arguments show in ps)')
    .option('-c, --config <file>', "offline: the coordinator's JSON config, as for twopc serve (TWOPC_CONFIG)")
    .option('-d, --data-dir <dir>', "offline: the coordinator's decision log directory (TWOPC_DATA_DIR)")
    .option('-l, --log <spec>', 'offline: the decision log, as for twopc serve: file:<dir>, postgres://… or redis://… (TWOPC_LOG)')
    .option('--json', 'print the result as one JSON line on stdout (for scripts)')
    .option('-q, --quiet', 'no progress on stderr');
}

/** `--wait <ms>`: how long to wait for phase 2. */
export function parseWait(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > MAX_ADMIN_WAIT_MS) throw new InvalidArgumentError(`must be an integer number of milliseconds from 0 to ${MAX_ADMIN_WAIT_MS}`);
  return n;
}

/** A transaction id argument; anything else is a usage error (exit 2). */
export function txId(value: string): string {
  if (!isTxId(value)) throw new CliError(EXIT.usage, `ID must be a transaction id (a UUID such as 0190f5c2-…), got ${JSON.stringify(value)}`);
  return value;
}

/** Help text of `--wait` (recover, retry). */
export const WAIT_HELP = 'wait at most this long for phase 2 (online default: the coordinator\'s commitWaitMs; offline default: 60000, then the rest is left to the next start)';
