import { Command, Option } from 'commander';
import { z } from 'zod';

const int = (name: string, min: number, max: number) =>
  z.coerce.number({ error: `${name} must be a number` }).int(`${name} must be an integer`).min(min, `${name} must be >= ${min}`).max(max, `${name} must be <= ${max}`);
const seconds = (name: string) => z.coerce.number({ error: `${name} must be a number` }).min(0, `${name} must be >= 0`).max(24 * 3600, `${name} must be <= 86400`);

/** Settings of one `npm run load` run: flags over the scenario's defaults, validated once, frozen. */
export const loadOptionsSchema = z
  .object({
    scenario: z.string(),
    clients: int('clients', 1, 20_000),
    seconds: seconds('seconds'),
    idleSeconds: seconds('idle-seconds'),
    workers: int('workers', 1, 16).optional(),
    branches: int('branches', 1, 8),
    prepare: z.enum(['held', 'eager'], { error: 'prepare must be held or eager' }),
    rate: z.coerce.number({ error: 'rate must be a number' }).positive('rate must be > 0').optional(),
    active: z.array(int('active', 1, 10_000_000)).min(1, 'active must list at least one count'),
    delayFraction: z.coerce.number({ error: 'delay-fraction must be a number' }).min(0, 'delay-fraction must be 0..1').max(1, 'delay-fraction must be 0..1'),
    delayMs: int('delay-ms', 0, 600_000),
    compactEvery: seconds('compact-every'),
    warmupSeconds: seconds('warmup-seconds'),
    scrapeSeconds: seconds('scrape-seconds'),
    probeMs: int('probe-ms', 1, 60_000),
    txTimeoutMs: int('tx-timeout-ms', 1, 24 * 3600_000).optional(),
    requestTimeoutMs: int('request-timeout-ms', 100, 3600_000),
    connectTimeoutMs: int('connect-timeout-ms', 100, 600_000),
    coordinatorEnv: z.record(z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'coordinator-env names must be upper-case environment variable names'), z.string()),
    out: z.string().min(1).optional(),
    verify: z.boolean(),
    build: z.enum(['auto', 'always', 'never']),
    keep: z.boolean(),
    progressSeconds: seconds('progress-seconds'),
  })
  .strict();

export type LoadOptions = Readonly<z.output<typeof loadOptionsSchema>>;

/** What a scenario sets when the flag is not given. */
export type ScenarioDefaults = Partial<Pick<LoadOptions, 'clients' | 'seconds' | 'idleSeconds' | 'active' | 'txTimeoutMs' | 'connectTimeoutMs'>>;

const BASE_DEFAULTS = {
  clients: 200,
  seconds: 60,
  idleSeconds: 30,
  branches: 2,
  prepare: 'held',
  active: [10_000, 50_000],
  delayFraction: 0.1,
  delayMs: 5000,
  compactEvery: 30,
  warmupSeconds: 10,
  scrapeSeconds: 15,
  probeMs: 10,
  requestTimeoutMs: 120_000,
  connectTimeoutMs: 10_000,
  verify: true,
  build: 'auto',
  keep: false,
  progressSeconds: 5,
  coordinatorEnv: {},
} as const;

function collectEnv(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new Error(`--coordinator-env takes KEY=VALUE (got ${JSON.stringify(value)})`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/**
 * Parses argv (`--help` lists the scenarios); exits with a usage message
 * naming the bad flag. Flags not given take the scenario's defaults, then
 * the general ones.
 */
export function parseLoadOptions(argv: string[], scenarios: ReadonlyArray<{ name: string; summary: string; defaults: ScenarioDefaults }>): LoadOptions {
  const list = scenarios.map((s) => `  ${s.name.padEnd(18)} ${s.summary}`).join('\n');
  const program: Command = new Command('load')
    .description('Load against a real `twopc serve` (compiled, file log, stub participants): RSS over time, event-loop lag, throughput and latency by status code')
    .addOption(new Option('--scenario <name>', 'what to run (see below)').makeOptionMandatory())
    .option('--clients <n>', 'API clients (closed loop: each one cycle in flight; with --rate: the cap on cycles in flight)')
    .option('--seconds <s>', 'length of the load phase (of each, for commit-then-abort and slow-participant)')
    .option('--idle-seconds <s>', 'idle phase after the load: does memory come back down?')
    .option('--workers <n>', 'load-generator processes (default: one per 250 clients, 1..4)')
    .option('--branches <n>', `participants each transaction enlists (default ${BASE_DEFAULTS.branches})`)
    .addOption(new Option('--prepare <when>', 'branches enlist as held (prepared at commit, the SDK default) or eager').choices(['held', 'eager']))
    .option('--rate <n>', 'open loop: transactions started per second whatever their latency (default: closed loop)')
    .option('--active <list>', 'active / abort-active: active transactions to hold, comma-separated levels')
    .option('--delay-fraction <f>', `slow-participant: share of prepares delayed (default ${BASE_DEFAULTS.delayFraction})`)
    .option('--delay-ms <ms>', `slow-participant: the delay (default ${BASE_DEFAULTS.delayMs})`)
    .option('--compact-every <s>', `compaction: admin compaction every this many seconds, 0 = only the log's own (default ${BASE_DEFAULTS.compactEvery})`)
    .option('--warmup-seconds <s>', `left out of the event-loop lag summary at the start of the load (default ${BASE_DEFAULTS.warmupSeconds})`)
    .option('--scrape-seconds <s>', `/metrics scrape interval, 0 = none (default ${BASE_DEFAULTS.scrapeSeconds}, Prometheus's default; each scrape costs the coordinator O(live transactions))`)
    .option('--probe-ms <ms>', `pause between GET /healthz probes (default ${BASE_DEFAULTS.probeMs})`)
    .option('--tx-timeout-ms <ms>', 'timeoutMs of each begin (default: the coordinator\'s; active scenarios: 600000)')
    .option('--request-timeout-ms <ms>', `client-side timeout of one API request (default ${BASE_DEFAULTS.requestTimeoutMs})`)
    .option('--connect-timeout-ms <ms>', 'client-side TCP connect timeout (default 10000; burst: 60000)')
    .option('--coordinator-env <KEY=VALUE>', 'extra environment of the coordinator (repeatable), e.g. NODE_OPTIONS=--max-old-space-size=512', collectEnv)
    .option('--out <file.jsonl>', 'write the per-second series (one JSON object per second)')
    .option('--no-verify', 'stubs do not check the coordinator\'s call signatures')
    .addOption(new Option('--build <when>', 'npm run build first: auto (when missing or older than the sources), always, never').choices(['auto', 'always', 'never']).default('auto'))
    .option('--keep', 'keep the run directory (the coordinator\'s log and output)')
    .option('--progress-seconds <s>', `progress line interval on stderr, 0 = none (default ${BASE_DEFAULTS.progressSeconds})`)
    .addHelpText('after', `\nScenarios:\n${list}\n\nProgress goes to stderr; the report to stdout, its last line one JSON object.\nExamples:\n  npm run load -- --scenario steady --clients 200 --seconds 30 --idle-seconds 20\n  npm run load -- --scenario slow-participant --seconds 30\n  npm run load -- --scenario active --active 10000,50000\n`)
    .allowExcessArguments(false);
  program.parse(argv);
  const raw = program.opts<Record<string, unknown>>();
  const scenario = scenarios.find((s) => s.name === raw.scenario);
  if (!scenario) program.error(`unknown scenario ${JSON.stringify(raw.scenario)}; known: ${scenarios.map((s) => s.name).join(', ')}`);
  const given = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  if (typeof given.active === 'string') given.active = given.active.split(',').map((x) => x.trim()).filter(Boolean);
  const merged = { ...BASE_DEFAULTS, ...scenario.defaults, ...given, active: given.active ?? scenario.defaults.active ?? BASE_DEFAULTS.active };
  const parsed = loadOptionsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    program.error(`invalid option ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return Object.freeze(parsed.data);
}
