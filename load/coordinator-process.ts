import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { REPO_ROOT } from './child-processes';

/** How a run's coordinator is configured (all through its CLI and TWOPC_* environment). */
export interface CoordinatorSettings {
  entry: string;
  dataDir: string;
  /** Everything it prints goes here. */
  outputFile: string;
  apiToken: string;
  adminToken: string;
  participantSecret: string;
  participantUrlAllowList: string[];
  /** Added last: `--coordinator-env KEY=VALUE` (e.g. settings a fix introduces, NODE_OPTIONS). */
  extraEnv: Record<string, string>;
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const TAIL_LINES = 40;

/**
 * `twopc serve` as its own process: the real node process running the
 * compiled CLI (its pid is the one measured), a file log in the run's
 * directory, a random free port. Its pino lines are counted by level and
 * message, so the report can say how many retry warnings it logged.
 */
export class CoordinatorProcess {
  private partial = '';
  private readonly tail: string[] = [];
  private readonly lineListeners: Array<(level: string, msg: string) => void> = [];
  private readyFound?: (port: number) => void;
  private stopping?: Promise<void>;
  /** `<level> <msg>` → lines logged. */
  readonly logCounts = new Map<string, number>();
  port = 0;
  /** Set when it exited on its own (a crash, out of memory), not because it was stopped. */
  unexpectedExit?: { code: number | null; signal: string | null; at: number };

  private constructor(
    private readonly child: ChildProcess,
    private readonly output: fs.WriteStream,
  ) {
    const take = (chunk: Buffer) => {
      output.write(chunk);
      this.take(chunk.toString('utf8'));
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    child.once('exit', (code, signal) => {
      if (!this.stopping) this.unexpectedExit = { code, signal, at: Date.now() };
    });
  }

  static async start(s: CoordinatorSettings, timeoutMs = 60_000): Promise<CoordinatorProcess> {
    const env: NodeJS.ProcessEnv = {};
    // A user's own coordinator settings must not leak into the measured one.
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TWOPC_') && k !== 'NODE_OPTIONS') env[k] = v;
    Object.assign(env, {
      NODE_ENV: 'production',
      TWOPC_HOST: '127.0.0.1',
      TWOPC_API_TOKEN: s.apiToken,
      TWOPC_ADMIN_TOKEN: s.adminToken,
      TWOPC_PARTICIPANT_SECRET: s.participantSecret,
      TWOPC_PARTICIPANT_URL_ALLOW_LIST: s.participantUrlAllowList.join(','),
      ...s.extraEnv,
    });
    const child = spawn(process.execPath, [s.entry, 'serve', '--data-dir', s.dataDir, '--port', '0'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = new CoordinatorProcess(child, fs.createWriteStream(s.outputFile));
    let timer: NodeJS.Timeout | undefined;
    try {
      proc.port = await new Promise<number>((resolve, reject) => {
        proc.readyFound = resolve;
        child.once('error', reject);
        child.once('exit', (code, signal) => reject(new Error(`the coordinator exited (${signal ?? code}) before it was ready:\n${proc.tailText()}`)));
        timer = setTimeout(() => reject(new Error(`the coordinator was not ready within ${timeoutMs} ms:\n${proc.tailText()}`)), timeoutMs);
      });
      return proc;
    } catch (e) {
      await proc.stop();
      throw e;
    } finally {
      clearTimeout(timer);
      proc.readyFound = undefined;
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  onLogLine(listener: (level: string, msg: string) => void): void {
    this.lineListeners.push(listener);
  }

  tailText(lines = 20): string {
    return [...this.tail, this.partial].filter(Boolean).slice(-lines).map((l) => `  coordinator| ${l}`).join('\n');
  }

  /** Graceful (SIGTERM: it finishes requests in flight and closes its log), SIGKILL after `graceMs`. */
  stop(graceMs = 10_000): Promise<void> {
    this.stopping ??= (async () => {
      if (this.running) {
        const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
        this.child.kill('SIGTERM');
        const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      await new Promise<void>((resolve) => this.output.end(() => resolve()));
    })();
    return this.stopping;
  }

  private take(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      this.tail.push(line);
      let level = 'text';
      let msg = line.slice(0, 120);
      let port: number | undefined;
      try {
        const rec = JSON.parse(line) as { level?: number; msg?: string; port?: number };
        level = LEVELS[rec.level ?? 30] ?? String(rec.level);
        msg = String(rec.msg ?? '');
        port = rec.port;
      } catch {
        // Not a pino line (a crash trace): counted as text.
      }
      const key = `${level} ${msg}`;
      this.logCounts.set(key, (this.logCounts.get(key) ?? 0) + 1);
      for (const l of this.lineListeners) l(level, msg);
      if (this.readyFound && msg === 'twopc coordinator ready' && typeof port === 'number') this.readyFound(port);
    }
    if (this.tail.length > TAIL_LINES) this.tail.splice(0, this.tail.length - TAIL_LINES);
  }
}
