import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

/** The repository root (or `dist/` when this runs compiled): entry points are found relative to it. */
const ROOT = path.resolve(__dirname, '../..');
// Run from TypeScript sources through tsx, or, compiled, the .js next to this file.
const EXT = path.extname(__filename);
const NODE_ARGS = EXT === '.ts' ? ['--import', 'tsx'] : [];
const TAIL_LINES = 200;

/** Options of {@link NodeProcess.start}. */
export interface NodeProcessSpec {
  /** Name in messages. */
  label: string;
  /** Entry point relative to the repository root, without extension (`coordinator/demo/account-service`). */
  entry: string;
  args?: string[];
  /** Options for node itself (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** Added to the environment; inherited TWOPC_* variables are dropped so a user's own coordinator settings cannot leak in. */
  env: Record<string, string>;
  /** A line of output (stdout or stderr) that says the process is ready. */
  ready: RegExp;
  timeoutMs?: number;
  /** Another checkout's root to run `entry` from (a bench's before/after); this one's by default. */
  root?: string;
}

/**
 * A Node.js program run as its own process (a coordinator, a service), with
 * the last lines of its output kept for error messages.
 *
 * @example
 * const { proc, match } = await NodeProcess.start({ label: 'alpha', entry: 'coordinator/demo/account-service', env, ready: /"ready":true/ });
 * await proc.stop();
 */
export class NodeProcess {
  private readonly lines: string[] = [];
  private partial = '';
  private readyLine?: { pattern: RegExp; found: (m: RegExpMatchArray) => void };

  private constructor(
    readonly label: string,
    private readonly child: ChildProcess,
  ) {
    const take = (chunk: Buffer) => this.take(chunk.toString('utf8'));
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
  }

  /** Starts the process and resolves once it printed a line matching `spec.ready` (with the match). */
  static async start(spec: NodeProcessSpec): Promise<{ proc: NodeProcess; match: RegExpMatchArray }> {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TWOPC_')) env[k] = v;
    const root = spec.root ?? ROOT;
    const child = spawn(process.execPath, [...NODE_ARGS, ...(spec.nodeArgs ?? []), path.join(root, `${spec.entry}${EXT}`), ...(spec.args ?? [])], {
      cwd: root,
      env: { ...env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = new NodeProcess(spec.label, child);
    const timeoutMs = spec.timeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
        proc.readyLine = { pattern: spec.ready, found: resolve };
        child.once('error', reject);
        child.once('exit', (code, signal) => reject(new Error(`${spec.label} exited (${signal ?? code}) before it was ready:\n${proc.tail()}`)));
        timer = setTimeout(() => reject(new Error(`${spec.label} was not ready within ${timeoutMs} ms:\n${proc.tail()}`)), timeoutMs);
      });
      return { proc, match };
    } catch (e) {
      await proc.stop();
      throw e;
    } finally {
      clearTimeout(timer);
      proc.readyLine = undefined;
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last lines it printed, for error messages. */
  tail(lines = 30): string {
    return [...this.lines, this.partial].filter(Boolean).slice(-lines).map((l) => `  ${this.label}| ${l}`).join('\n');
  }

  /** Sends `signal` and waits for the exit; SIGKILL after `graceMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  private take(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      this.lines.push(line);
      const m = this.readyLine && line.match(this.readyLine.pattern);
      if (m) this.readyLine?.found(m);
    }
    if (this.lines.length > TAIL_LINES) this.lines.splice(0, this.lines.length - TAIL_LINES);
  }
}
