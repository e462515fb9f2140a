import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const STEP_TIMEOUT_MS = 20_000;

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A run's temp directory (the coordinator's log, its output) and everything
 * to undo at the end: undo steps run newest first, once, on success, error
 * or Ctrl-C. A detached reaper covers the case where this process is killed
 * outright (tsx answers a slow Ctrl-C with SIGKILL): it then kills the
 * recorded processes whose command line names this directory, and removes it.
 */
export class RunDir {
  private readonly undo: Array<{ label: string; run: () => Promise<void> | void }> = [];
  private cleaning?: Promise<void>;
  private readonly pidFile: string;

  private constructor(
    readonly path: string,
    private readonly keep: boolean,
  ) {
    this.pidFile = `${path}/pids`;
    const script =
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ` +
      `if [ -f ${quote(this.pidFile)} ]; then for p in $(cat ${quote(this.pidFile)}); do ` +
      `grep -qF -- ${quote(path)} /proc/$p/cmdline 2>/dev/null && kill -9 $p; done; fi; ` +
      // A run that cleaned up has removed the directory: then the reaper starts nothing.
      (keep ? 'true' : `if [ -e ${quote(path)} ]; then rm -rf ${quote(path)}; fi`);
    spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
  }

  static create(keep: boolean): RunDir {
    return new RunDir(fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-load-')), keep);
  }

  file(name: string): string {
    return path.join(this.path, name);
  }

  /** A process the reaper must kill if this one dies without cleaning up. */
  track(pid: number | undefined): void {
    if (pid !== undefined) fs.appendFileSync(this.pidFile, `${pid}\n`);
  }

  onCleanup(label: string, run: () => Promise<void> | void): void {
    this.undo.push({ label, run });
  }

  cleanup(): Promise<void> {
    this.cleaning ??= (async () => {
      for (const step of this.undo.reverse()) {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            Promise.resolve().then(step.run),
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new Error(`timed out after ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
            }),
          ]);
        } catch (e) {
          process.stderr.write(`cleanup: ${step.label} failed: ${e instanceof Error ? e.message : String(e)}\n`);
        } finally {
          clearTimeout(timer);
        }
      }
      if (this.keep) process.stderr.write(`kept ${this.path}\n`);
      else fs.rmSync(this.path, { recursive: true, force: true });
    })();
    return this.cleaning;
  }
}
