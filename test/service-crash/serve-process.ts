import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import type { RecoveryReport } from '../../coordinator/engine/recovery';

const ROOT = path.resolve(__dirname, '../..');

/** How a process ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * `twopc serve` as a process (what operators run), started again and again
 * on the same port and log: each start waits for the ready line and returns
 * the recovery report it logs.
 */
export class ServeProcess {
  private proc?: ChildProcess;
  private output = '';
  private exit?: Promise<Exit>;

  constructor(private readonly configFile: string, private readonly env: Record<string, string>) {}

  async start(extraEnv: Record<string, string> = {}, timeoutMs = 30_000): Promise<RecoveryReport> {
    this.output = '';
    const proc = spawn(process.execPath, ['--import', 'tsx', 'coordinator/cli/main.ts', 'serve', '--config', this.configFile], {
      cwd: ROOT,
      env: { ...process.env, ...this.env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    this.exit = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    proc.stdout!.on('data', (d) => (this.output += d));
    proc.stderr!.on('data', (d) => (this.output += d));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.output.split('\n').find((l) => l.includes('"msg":"twopc coordinator ready"'));
      if (line) return (JSON.parse(line) as { recovery: RecoveryReport }).recovery;
      if (!this.running) throw new Error(`twopc serve exited before it was ready:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`twopc serve not ready within ${timeoutMs} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get log(): string {
    return this.output;
  }

  /** Waits for the process to end on its own (a crash point kills it). */
  async exited(timeoutMs = 30_000): Promise<Exit> {
    if (!this.exit) throw new Error('twopc serve was never started');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`twopc serve did not exit within ${timeoutMs} ms:\n${this.output.slice(-3000)}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exit, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal without waiting (SIGKILL, or SIGSTOP / SIGCONT to pause it past its lease). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.proc!.kill(signal);
  }

  /** Graceful stop (SIGTERM), SIGKILL if it hangs. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.proc!.kill('SIGTERM');
    const timer = setTimeout(() => this.proc?.kill('SIGKILL'), 10_000);
    await this.exit;
    clearTimeout(timer);
  }
}
