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
  .description('run the coordinator: recovery at start, sweeps, the /v1 API, health and metrics over HTTP')
  .option('-c, --config <file>', 'JSON configuration file (TWOPC_* environment variables override it)')
  .option('-H, --host <host>', 'HTTP listener address (TWOPC_HOST)')
  .option('-p, --port <port>', 'HTTP port (TWOPC_PORT)')
  .option('-d, --data-dir <dir>', 'decision log directory (TWOPC_DATA_DIR)')
  .option('--insecure', 'serve the API without authentication (development only; TWOPC_INSECURE)')
  .addHelpText(
    'after',
    '\nThe API needs a bearer token: TWOPC_API_TOKEN (or apiToken in the config). Without one, a loopback-only\n' +
      'listener (the default 127.0.0.1) generates a token for the run and logs it; any other listener refuses to start\n' +
      'unless --insecure. Participant services are called only when TWOPC_PARTICIPANT_SECRET is set.',
  )
  .action(async (opts: { config?: string; host?: string; port?: string; dataDir?: string; insecure?: boolean }) => {
    const env = { ...process.env };
    if (opts.host) env.TWOPC_HOST = opts.host;
    if (opts.port) env.TWOPC_PORT = opts.port;
    if (opts.dataDir) env.TWOPC_DATA_DIR = opts.dataDir;
    if (opts.insecure) env.TWOPC_INSECURE = 'true';
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
