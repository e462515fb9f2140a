/**
 * Everything a chaos run created, undone in reverse order however the run
 * ends (success, violation, error, Ctrl-C). Each step is bounded and its
 * failure does not stop the others. `onExit` hooks are the synchronous last
 * resort if the process exits before `run` could finish.
 *
 * @example
 * const teardown = new Teardown();
 * teardown.add('cluster', () => cluster.destroy());
 * try { ... } finally { await teardown.run(console.error); }
 */
export class Teardown {
  private readonly steps: Array<{ label: string; fn: () => Promise<unknown> }> = [];
  private readonly exitHooks: Array<() => void> = [];
  private readonly onProcessExit = () => {
    for (const hook of this.exitHooks) {
      try {
        hook();
      } catch {
        // Exiting anyway; the next hook still runs.
      }
    }
  };

  constructor() {
    process.once('exit', this.onProcessExit);
  }

  add(label: string, fn: () => Promise<unknown>): void {
    this.steps.push({ label, fn });
  }

  /** A synchronous hook for process exit (kill a child, say). */
  onExit(hook: () => void): void {
    this.exitHooks.push(hook);
  }

  /** Runs every step, last added first; reports (never throws) the ones that failed or hung. */
  async run(report: (message: string) => void, stepTimeoutMs = 30_000): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          step.fn(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`did not finish within ${stepTimeoutMs} ms`)), stepTimeoutMs);
          }),
        ]);
      } catch (e) {
        report(`cleanup of ${step.label} failed: ${e instanceof Error ? e.message : String(e)}`);
      } finally {
        clearTimeout(timer);
      }
    }
    this.onProcessExit();
    process.removeListener('exit', this.onProcessExit);
  }
}
