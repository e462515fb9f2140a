import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/**
 * A worker script of test/safety/workers run as its own node process (no
 * tsx wrapper: `node --import tsx`, so a signal reaches the process that holds
 * the work). It reads JSON commands on stdin and writes JSON lines on stdout.
 */
export class WorkerProcess {
  private readonly proc: ChildProcess;
  private output = '';
  private readonly exit: Promise<void>;

  constructor(script: string, env: Record<string, string>) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'workers', script)], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc.stdout!.on('data', (d) => (this.output += d));
    this.proc.stderr!.on('data', (d) => (this.output += d));
    this.exit = new Promise((resolve) => this.proc.once('exit', () => resolve()));
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get log(): string {
    return this.output;
  }

  send(command: Record<string, unknown>): void {
    this.proc.stdin!.write(`${JSON.stringify(command)}\n`);
  }

  /** The first JSON line with `event` (and matching `where`), waiting up to `timeoutMs`. */
  async waitFor<T = Record<string, unknown>>(event: string, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const line of this.output.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const parsed = JSON.parse(line) as { event?: string };
          if (parsed.event === event) return parsed as T;
        } catch {
          // not one of ours
        }
      }
      if (!this.running) throw new Error(`worker exited before "${event}":\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`no "${event}" from the worker within ${timeoutMs} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.proc.kill(signal);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGCONT');
    this.send({ cmd: 'exit' });
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await this.exit;
    clearTimeout(timer);
  }
}
