import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PgCluster } from '../../harness/pg-cluster';
import { BANK_SCHEMA } from '../../harness/bank';
import { jsonLines, runTs } from '../support/child';

const ROOT = path.resolve(__dirname, '../..');
const STRAND_WORKER = path.join(__dirname, 'strand-worker.ts');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without any TWOPC_* variable of the machine running the tests. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TWOPC_')));
}

/** Runs `twopc <args>` as its own process (stdin is not a terminal), the way an operator or a script does. */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'coordinator/cli/main.ts', ...args], {
      cwd: ROOT,
      env: { ...cleanEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** util-linux `script` runs a command on a pseudo-terminal: the only way to test a prompt without native modules. */
export const HAVE_SCRIPT = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;

/**
 * Runs `twopc <args>` on a terminal (through `script`) and types `answer`
 * when the confirmation prompt shows. Output is the terminal's (stdout and
 * stderr together).
 */
export function runCliOnTerminal(args: string[], answer: string, env: Record<string, string> = {}, timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, '--import', 'tsx', 'coordinator/cli/main.ts', ...args].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: { ...cleanEnv(), ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let answered = false;
    child.stdout.on('data', (d) => {
      output += d;
      if (!answered && output.includes('[y/N]')) {
        answered = true;
        child.stdin.write(`${answer}\n`);
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The one JSON line a `--json` run printed on stdout. */
export function jsonOf<T = any>(run: CliRun): T {
  const lines = run.stdout.trim().split('\n');
  if (lines.length !== 1) throw new Error(`expected one JSON line on stdout, got:\n${run.stdout}\nstderr:\n${run.stderr}`);
  return JSON.parse(lines[0]) as T;
}

/** Two participant databases (ledger_a, ledger_b) with the bank schema, on one throwaway cluster. */
export class Ledgers {
  private constructor(readonly cluster: PgCluster) {}

  static async start(name: string): Promise<Ledgers> {
    const cluster = await PgCluster.start({ name, maxPreparedTransactions: 20 });
    const ledgers = new Ledgers(cluster);
    for (const db of ['ledger_a', 'ledger_b']) {
      await cluster.createDatabase(db);
      await cluster.withClient(async (c) => {
        await c.query(BANK_SCHEMA);
        await c.query('insert into accounts (id, balance) values (1, 1000), (2, 1000)');
      }, db);
    }
    return ledgers;
  }

  url(db: 'ledger_a' | 'ledger_b'): string {
    return this.cluster.connectionString(db);
  }

  get databases(): Record<string, string> {
    return { ledger_a: this.url('ledger_a'), ledger_b: this.url('ledger_b') };
  }

  /** Prepared transactions with this GID prefix, on both databases. */
  prepared(prefix: string): Promise<string[]> {
    return this.cluster.preparedGids(prefix);
  }

  /** A prepared branch made by hand, as a crashed or foreign process could leave it: a transfer row, then PREPARE. */
  async prepareByHand(db: 'ledger_a' | 'ledger_b', gid: string, transferId: string): Promise<void> {
    await this.cluster.withClient(async (c) => {
      await c.query('begin');
      await c.query('insert into transfers (id, account, delta) values ($1, 2, 0)', [transferId]);
      await c.query(`prepare transaction '${gid}'`);
    }, db);
  }

  /** An operator's hand-made heuristic decision: ROLLBACK PREPARED behind the coordinator's back. */
  async rollbackByHand(db: 'ledger_a' | 'ledger_b', gid: string): Promise<void> {
    await this.cluster.withClient((c) => c.query(`rollback prepared '${gid}'`), db);
  }

  async transferIds(db: 'ledger_a' | 'ledger_b'): Promise<string[]> {
    return this.cluster.withClient(async (c) => (await c.query<{ id: string }>('select id from transfers order by id')).rows.map((r) => r.id), db);
  }

  destroy(): Promise<void> {
    return this.cluster.destroy();
  }
}

/** A temp directory per test file, removed at the end. */
export function tempDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `twopc-cli-${label}-`));
}

/**
 * The coordinator's config file (what `twopc serve --config` and offline
 * commands read): its log directory, the ledgers, a GID prefix per scenario.
 */
export function writeConfig(dir: string, ledgers: Ledgers, prefix: string, engine: Record<string, unknown> = {}): { file: string; dataDir: string } {
  const dataDir = path.join(dir, `log-${prefix}`);
  const file = path.join(dir, `config-${prefix}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({ dataDir, databases: ledgers.databases, engine: { gidPrefix: prefix, sweepIntervalMs: 0, phaseTwoBaseDelayMs: 10, phaseTwoMaxDelayMs: 100, ...engine } }),
  );
  return { file, dataDir };
}

/**
 * Runs COUNT transfers through an in-process coordinator on `dataDir`,
 * crashing (SIGKILL) at `crashAt` if given. Returns the transaction ids begun,
 * in order: with a crash, the last one is the transaction it stranded.
 */
export async function strand(ledgers: Ledgers, dataDir: string, prefix: string, options: { crashAt?: string; count?: number } = {}): Promise<string[]> {
  const run = await runTs(STRAND_WORKER, {
    LOG_DIR: dataDir,
    PG_A: ledgers.url('ledger_a'),
    PG_B: ledgers.url('ledger_b'),
    GID_PREFIX: prefix,
    COUNT: String(options.count ?? 3),
    TWOPC_CRASH_AT: options.crashAt ?? '',
  });
  const expected = options.crashAt ? 'SIGKILL' : null;
  if (run.signal !== expected || run.stderr !== '') throw new Error(`strand worker: signal ${run.signal}, code ${run.code}:\n${run.stderr}`);
  return jsonLines<{ begun?: string }>(run.stdout).flatMap((l) => (l.begun ? [l.begun] : []));
}
