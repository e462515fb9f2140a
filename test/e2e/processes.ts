import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/** A TypeScript entry point run as its own process (through tsx), with its output kept for diagnostics. */
export class TsProcess {
  private proc?: ChildProcess;
  private output = '';

  constructor(
    readonly label: string,
    private readonly file: string,
    private readonly args: string[],
    private readonly env: Record<string, string>,
  ) {}

  /** Starts it and waits for a line matching `ready`; returns the match. */
  async start(ready: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    this.output = '';
    const proc = spawn(process.execPath, ['--import', 'tsx', this.file, ...this.args], {
      cwd: ROOT,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    proc.stdout!.on('data', (d) => (this.output += d));
    proc.stderr!.on('data', (d) => (this.output += d));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.output.match(ready);
      if (m) return m;
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${this.label} exited before it was ready:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`${this.label} not ready within ${timeoutMs} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get log(): string {
    return this.output;
  }

  /** Sends a signal and waits for the process to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.running) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** Waits for the process to exit on its own (e.g. it killed itself). */
  async exited(timeoutMs = 10_000): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.running) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.label} did not exit within ${timeoutMs} ms`)), timeoutMs);
      proc.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
