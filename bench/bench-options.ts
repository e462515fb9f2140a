import { Command, Option } from 'commander';
import { z } from 'zod';

const count = (name: string, min: number, max: number) =>
  z.coerce.number({ error: `${name} must be a number` }).int(`${name} must be an integer`).min(min, `${name} must be >= ${min}`).max(max, `${name} must be <= ${max}`);

/** Bench settings: parsed from flags (or BENCH_* env vars) once, validated, frozen, passed in. */
export const benchOptionsSchema = z
  .object({
    /** Measured seconds per mode per round. */
    seconds: z.coerce.number({ error: 'seconds must be a number' }).positive('seconds must be > 0'),
    /** Unmeasured seconds before each measured run (warms pools, caches, JIT). */
    warmup: z.coerce.number({ error: 'warmup must be a number' }).min(0, 'warmup must be >= 0'),
    rounds: count('rounds', 1, 100),
    concurrency: count('concurrency', 1, 1_000),
    accounts: count('accounts', 100, 10_000_000),
    poolSize: count('pool-size', 1, 1_000),
    modes: z
      .array(z.string().min(1))
      .min(1, 'modes must name at least one mode')
      .refine((m) => new Set(m).size === m.length, 'modes must not repeat a mode'),
    /** Counts statements, pool checkouts and phase times per transfer (slightly slows every mode). */
    profile: z.boolean(),
    seed: count('seed', 0, 2 ** 31),
    /** Directory for V8 CPU profiles of the measured runs (none when unset). */
    cpuProfile: z.string().min(1).optional(),
  })
  .strict();

export type BenchOptions = Readonly<z.output<typeof benchOptionsSchema>>;

/** Parses argv; exits with a usage message naming the bad field. */
export function parseBenchOptions(argv: string[], defaultModes: readonly string[], knownModes: readonly string[]): BenchOptions {
  // Annotated so TypeScript knows `program.error` (never returns) ends the function.
  const program: Command = new Command('bank-bench')
    .description('Bank transfers between two PostgreSQL clusters: local commits, raw 2PC and the twopc engine')
    .addOption(new Option('--seconds <n>', 'measured seconds per mode per round').env('BENCH_SECONDS').default('8'))
    .addOption(new Option('--warmup <n>', 'warm-up seconds before each measured run').env('BENCH_WARMUP').default('2'))
    .addOption(new Option('--rounds <n>', 'rounds; modes are interleaved within each round').env('BENCH_ROUNDS').default('3'))
    .addOption(new Option('--concurrency <n>', 'concurrent transfers (workers)').env('BENCH_CONCURRENCY').default('16'))
    .addOption(new Option('--accounts <n>', 'accounts per ledger database').env('BENCH_ACCOUNTS').default('10000'))
    .addOption(new Option('--pool-size <n>', 'pg pool size per database per mode').env('BENCH_POOL_SIZE').default('20'))
    .addOption(new Option('--modes <list>', `comma-separated, run in this order (${knownModes.join(', ')})`).env('BENCH_MODES').default(defaultModes.join(',')))
    .addOption(new Option('--profile', 'count round trips and time phases per transfer').env('BENCH_PROFILE').default(false))
    .addOption(new Option('--cpu-profile <dir>', 'write a V8 .cpuprofile of each measured run into <dir>').env('BENCH_CPU_PROFILE'))
    .addOption(new Option('--seed <n>', 'seed of the transfer generator').env('BENCH_SEED').default('1'))
    .allowExcessArguments(false);
  program.parse(argv);
  const raw = program.opts<Record<string, unknown>>();
  const parsed = benchOptionsSchema.safeParse({ ...raw, modes: String(raw.modes).split(',').map((m) => m.trim()).filter(Boolean) });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    program.error(`invalid option ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const unknown = parsed.data.modes.filter((m) => !knownModes.includes(m));
  if (unknown.length > 0) program.error(`unknown mode(s) ${unknown.join(', ')}; known: ${knownModes.join(', ')}`);
  return Object.freeze(parsed.data);
}
