import { Command, CommanderError } from 'commander';
import { version } from '../../package.json';
import { errorMessage, isTwopcError } from '../engine/ports/protocol';
import { loadServiceConfig } from '../assembly/service-config';
import type { ServiceHooks } from '../service/serve';
import { addAdminCommands } from './commands';
import { registerDemoCommand } from './demo-command';
import { CliError, EXIT, EXIT_CODE_HELP, type ExitCode } from './exit-codes';
import { Output } from './output';

/** What a host adds to the `twopc` program (the chaos harness: faults injected into `twopc serve`). */
export interface TwopcProgramDeps {
  serviceHooks?: ServiceHooks;
}

/**
 * The `twopc` command: `serve`, the operator commands, `demo`.
 *
 * @example
 * await twopcProgram().parseAsync(process.argv);
 */
export function twopcProgram(deps: TwopcProgramDeps = {}): Command {
  const program = new Command();
  program
    .name('twopc')
    .description('two-phase commit coordinator for PostgreSQL')
    .version(version, '-V, --version', 'print the version of twopc')
    .showHelpAfterError()
    // Usage errors end with exit code 2 (not commander's 1), help with 0: see runTwopc.
    .exitOverride();

  program
    .command('serve')
    .description('run the coordinator: recovery at start, sweeps, the /v1 API, health and metrics over HTTP')
    .option('-c, --config <file>', 'JSON configuration file (TWOPC_* environment variables override it)')
    .option('-H, --host <host>', 'HTTP listener address (TWOPC_HOST)')
    .option('-p, --port <port>', 'HTTP port (TWOPC_PORT)')
    .option('-d, --data-dir <dir>', 'decision log directory (TWOPC_DATA_DIR)')
    .option('--insecure', 'serve the API without authentication (development only; TWOPC_INSECURE)')
    .option('-l, --log <spec>', 'decision log: file:<dir> (default: the data dir), postgres://… or redis://… (TWOPC_LOG)')
    .option('--allow-volatile', 'start on a PostgreSQL or Redis log that does not force decisions to disk (TWOPC_ALLOW_VOLATILE)')
    .option('--instance-name <name>', 'several instances on a PostgreSQL or Redis log: this instance\'s name; a restart under it takes over at once (TWOPC_INSTANCE_NAME)')
    .option('--instance-url <url>', 'several instances: the base URL the others relay requests to (TWOPC_INSTANCE_URL)')
    .option('--lease-ms <ms>', 'several instances: a dead instance\'s transactions are taken over this long after its last renewal (TWOPC_LEASE_MS)')
    .addHelpText(
      'after',
      '\nThe API needs a bearer token: TWOPC_API_TOKEN (or apiToken in the config). Without one, a loopback-only\n' +
        'listener (the default 127.0.0.1) generates an API token and an admin token (for twopc <command> --url, unless\n' +
        'TWOPC_ADMIN_TOKEN is set) for the run and logs them; any other listener refuses to start unless --insecure.\n' +
        'Participant services are called only when TWOPC_PARTICIPANT_SECRET is set.',
    )
    .action(async (opts: { config?: string; host?: string; port?: string; dataDir?: string; insecure?: boolean; log?: string; allowVolatile?: boolean; instanceName?: string; instanceUrl?: string; leaseMs?: string }) => {
      const env = { ...process.env };
      if (opts.host) env.TWOPC_HOST = opts.host;
      if (opts.port) env.TWOPC_PORT = opts.port;
      if (opts.dataDir) env.TWOPC_DATA_DIR = opts.dataDir;
      if (opts.insecure) env.TWOPC_INSECURE = 'true';
      if (opts.log) env.TWOPC_LOG = opts.log;
      if (opts.allowVolatile) env.TWOPC_ALLOW_VOLATILE = 'true';
      if (opts.instanceName) env.TWOPC_INSTANCE_NAME = opts.instanceName;
      if (opts.instanceUrl) env.TWOPC_INSTANCE_URL = opts.instanceUrl;
      if (opts.leaseMs) env.TWOPC_LEASE_MS = opts.leaseMs;
      const config = loadServiceConfig({ file: opts.config, env });
      // Loaded here, not at the top: the operator commands start faster without the HTTP stack.
      const { startService } = await import('../service/serve');
      const service = await startService(config, deps.serviceHooks);
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

  addAdminCommands(program, {
    streams: { stdout: process.stdout, stderr: process.stderr },
    terminal: { input: process.stdin, output: process.stderr },
    env: process.env,
    // Exit once stdout has taken the output: pooled HTTP and database connections must not hold the process open.
    exit: (code: ExitCode) => process.stdout.write('', () => process.exit(code)),
  });

  registerDemoCommand(program);

  program.addHelpText(
    'after',
    [
      '',
      'Operator commands work in one of two modes:',
      '  online   --url <url> (or TWOPC_URL): through a running coordinator\'s admin API; admin token in',
      '           TWOPC_ADMIN_TOKEN (or --token)',
      '  offline  otherwise: on the decision log of a stopped coordinator, found like twopc serve finds it',
      '           (--config, --data-dir, TWOPC_* variables), and its participant databases (TWOPC_DATABASES).',
      '           Refused while a coordinator holds the log (exit 7): use --url then. log verify needs no lock.',
      'Every command takes --json (one JSON line on stdout) and --help; progress goes to stderr.',
      '',
      EXIT_CODE_HELP,
    ].join('\n'),
  );
  return program;
}

/** Runs `twopc` on `argv` (process.argv's shape) and exits with the code of EXIT. */
export function runTwopc(argv: string[], deps: TwopcProgramDeps = {}): void {
  dropOutputToClosedPipes();
  twopcProgram(deps).parseAsync(argv).catch((e) => {
    if (e instanceof CommanderError) {
      // Help and version end with commander's own code (0); any other commander error is bad usage.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) process.exit(EXIT.ok);
      // Commander has written the message (and the help) to stderr; a script reading stdout under --json still gets its JSON line.
      if (jsonAsked(argv)) new Output(true, { stdout: process.stdout, stderr: process.stderr }).jsonError(usageError(e), EXIT.usage);
      process.stdout.write('', () => process.exit(EXIT.usage));
      return;
    }
    const code = isTwopcError(e) ? ` [${e.code}]` : '';
    process.stderr.write(`twopc: ${errorMessage(e)}${code}\n`);
    process.exit(isTwopcError(e, 'invalid-config') ? EXIT.config : EXIT.failure);
  });
}

/** A commander usage error (unknown option, missing argument, invalid value) as the CLI's own. */
function usageError(e: CommanderError): CliError {
  const message = e.code === 'commander.help' ? 'no command given: see twopc --help' : e.message.replace(/^error: /, '');
  return new CliError(EXIT.usage, message);
}

// Asked before commander could parse (the usage error may be what stopped it): any `--json` before `--`.
function jsonAsked(argv: string[]): boolean {
  const args = argv.slice(2);
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}

/**
 * A reader that stops early (`twopc --help | head -1`, `twopc list | head`)
 * closes the pipe: the next write fails with EPIPE, emitted on the stream,
 * and unheard that event crashes the process with a stack trace. The reader
 * asked for no more output, nothing else: the rest is dropped and the
 * command ends as it would have (help with 0, a command with its own code),
 * so work under way (a recovery pass writing progress to a closed stderr) is
 * never cut short. Any other stream error still crashes.
 */
function dropOutputToClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
  }
}
