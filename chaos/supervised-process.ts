import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const TAIL_BYTES = 64 * 1024;

/** How to run one of the processes under chaos. */
export interface ProcessSpec {
  label: string;
  /** A TypeScript entry point relative to the repository root, run through tsx. */
  entry: string;
  args?: string[];
  env: Record<string, string>;
  /** A line of its output that says it is ready. */
  ready: RegExp;
  /** Its output is appended here, each incarnation under a header line. */
  logFile: string;
  startTimeoutMs?: number;
}

/** How an incarnation ended. `expected`: the runner killed or stopped it, or a crash point was armed. */
export interface ProcessExit {
  label: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  expected: boolean;
  at: number;
}

/**
 * One process under chaos (the coordinator, or a participant service): started
 * again and again with the same port and data, SIGKILLed, SIGSTOPped and
 * SIGCONTinued. An exit the runner did not cause is reported through
 * `onUnexpectedExit` so the runner can restart it and note it.
 *
 * @example
 * const p = new SupervisedProcess({ label: 'ledger_0', entry: 'chaos/ledger-service.ts', env, ready: /"ready":true/, logFile });
 * await p.start();
 * await p.kill(); // SIGKILL, waits for the exit
 */
export class SupervisedProcess {
  private child?: ChildProcess;
  private exit?: Promise<ProcessExit>;
  private expecting = false;
  private stopped = false;
  private isPaused = false;
  /** The current incarnation printed its ready line: an exit before it is a failed start, which start() reports. */
  private isReady = false;
  private output = '';
  private last?: ProcessExit;
  private readonly log: fs.WriteStream;
  /** How many times it was started. */
  incarnations = 0;
  /** Called when an incarnation exits without the runner having caused it. */
  onUnexpectedExit?: (exit: ProcessExit, tail: string) => void;

  constructor(readonly spec: ProcessSpec) {
    this.log = fs.createWriteStream(spec.logFile, { flags: 'a' });
  }

  get running(): boolean {
    return this.child?.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get paused(): boolean {
    return this.running && this.isPaused;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  /** How the last incarnation that ended ended. */
  get lastExit(): ProcessExit | undefined {
    return this.last;
  }

  /** The last output of the current (or last) incarnation. */
  tail(chars = 4_000): string {
    return this.output.slice(-chars);
  }

  /**
   * Starts an incarnation (with `extraEnv` on top of the spec's) and waits for
   * its ready line, which it returns. Throws if it exits first or is not
   * ready in time (then it is killed). `exitExpected`: this incarnation is
   * meant to kill itself (a crash point is armed), so its exit is not reported.
   */
  async start(extraEnv: Record<string, string> = {}, options: { exitExpected?: boolean } = {}): Promise<string> {
    if (this.running) throw new Error(`${this.spec.label} is already running`);
    this.incarnations += 1;
    this.output = '';
    this.expecting = options.exitExpected ?? false;
    this.stopped = false;
    this.isPaused = false;
    this.isReady = false;
    const extra = Object.entries(extraEnv).map(([k, v]) => `${k}=${v}`).join(' ');
    this.log.write(`\n=== ${this.spec.label} #${this.incarnations} started ${new Date().toISOString()}${extra ? ` with ${extra}` : ''} ===\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', this.spec.entry, ...(this.spec.args ?? [])], {
      cwd: ROOT,
      env: { ...process.env, ...this.spec.env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const onData = (d: Buffer) => {
      this.log.write(d);
      this.output = (this.output + d.toString()).slice(-TAIL_BYTES);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    this.exit = new Promise((resolve) => {
      const ended = (code: number | null, signal: NodeJS.Signals | null, why?: string) => {
        const exit: ProcessExit = { label: this.spec.label, code, signal, expected: this.expecting || this.stopped, at: Date.now() };
        this.log.write(`\n=== ${this.spec.label} #${this.incarnations} ${why ?? `exited (${signal ?? `code ${code}`})`}${exit.expected ? '' : ' UNEXPECTEDLY'} ===\n`);
        this.last = exit;
        resolve(exit);
        if (!exit.expected && this.isReady) this.onUnexpectedExit?.(exit, this.tail());
      };
      child.once('exit', (code, signal) => ended(code, signal));
      // A process that could not be spawned never exits: end it here (an error listener also keeps the runner alive).
      child.once('error', (e) => {
        if (child.pid === undefined) ended(null, null, `could not be spawned: ${e.message}`);
      });
    });
    const deadline = Date.now() + (this.spec.startTimeoutMs ?? 60_000);
    for (;;) {
      const line = this.output.split('\n').find((l) => this.spec.ready.test(l));
      if (line) {
        this.isReady = true;
        return line;
      }
      if (!this.running) {
        await this.exit;
        throw new Error(`${this.spec.label} exited before it was ready:\n${this.tail()}`);
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`${this.spec.label} was not ready within ${this.spec.startTimeoutMs ?? 60_000} ms:\n${this.tail()}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** SIGKILL (also works on a paused process); resolves once it has exited. */
  async kill(): Promise<ProcessExit | undefined> {
    if (!this.running) return undefined;
    this.expecting = true;
    this.child!.kill('SIGKILL');
    this.isPaused = false;
    return this.exit;
  }

  /** SIGSTOP. False if it is not running or already paused. */
  pause(): boolean {
    if (!this.running || this.isPaused) return false;
    this.child!.kill('SIGSTOP');
    this.isPaused = true;
    return true;
  }

  /** SIGCONT. False if it was not paused. */
  resume(): boolean {
    if (!this.isPaused) return false;
    this.isPaused = false;
    if (this.running) this.child!.kill('SIGCONT');
    return true;
  }

  /** Waits up to `timeoutMs` for the current incarnation to exit on its own; undefined if it did not. */
  async waitExit(timeoutMs: number): Promise<ProcessExit | undefined> {
    if (!this.exit) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
    try {
      return await Promise.race([this.exit, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Graceful stop (SIGTERM, after SIGCONT if paused), SIGKILL after `timeoutMs`. Final: nothing restarts it. */
  async stop(timeoutMs = 5_000): Promise<ProcessExit | undefined> {
    this.stopped = true;
    if (!this.running) return undefined;
    this.expecting = true;
    this.resume();
    this.child!.kill('SIGTERM');
    const exit = await this.waitExit(timeoutMs);
    return exit ?? this.kill();
  }

  /** Synchronous last resort on process exit: no child outlives the runner. */
  killSync(): void {
    this.stopped = true;
    if (this.running) this.child!.kill('SIGKILL');
  }

  /** Closes the output file (after the process has ended). */
  async dispose(): Promise<void> {
    await new Promise<void>((resolve) => this.log.end(() => resolve()));
  }
}
