#!/usr/bin/env node
import { Command } from 'commander';
import { errorMessage, isTwopcError } from '../errors';
import { startService } from '../service/serve';
import { loadServiceConfig } from '../service/service-config';

/** Exit codes scripts can rely on. */
export const EXIT = { ok: 0, failure: 1, usage: 2, config: 3 } as const;

const program = new Command();
program.name('twopc').description('two-phase commit coordinator for PostgreSQL').showHelpAfterError();

program
  .command('serve')
  .description('run the coordinator: recovery at start, sweeps, health and metrics over HTTP')
  .option('-c, --config <file>', 'JSON configuration file (TWOPC_* environment variables override it)')
  .option('-p, --port <port>', 'HTTP port (TWOPC_PORT)')
  .option('-d, --data-dir <dir>', 'decision log directory (TWOPC_DATA_DIR)')
  .action(async (opts: { config?: string; port?: string; dataDir?: string }) => {
    const env = { ...process.env };
    if (opts.port) env.TWOPC_PORT = opts.port;
    if (opts.dataDir) env.TWOPC_DATA_DIR = opts.dataDir;
    const config = loadServiceConfig({ file: opts.config, env });
    const service = await startService(config);
    let stopping = false;
    const shutdown = () => {
      if (stopping) return;
      stopping = true;
      service.close().then(
        () => process.exit(EXIT.ok),
        (e) => {
          process.stderr.write(`twopc: shutdown failed: ${errorMessage(e)}\n`);
          process.exit(EXIT.failure);
        },
      );
    };
    process.on('SIGTERM', shutdown);
    process.on('SIGINT', shutdown);
  });

program.parseAsync(process.argv).catch((e) => {
  const code = isTwopcError(e) ? ` [${e.code}]` : '';
  process.stderr.write(`twopc: ${errorMessage(e)}${code}\n`);
  process.exit(isTwopcError(e, 'invalid-config') ? EXIT.config : EXIT.failure);
});
