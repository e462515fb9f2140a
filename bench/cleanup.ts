// A step that hangs (a pool waiting on a dying server) must not keep the clusters alive.
const STEP_TIMEOUT_MS = 15_000;

/**
 * Undo actions run in reverse order, once, whether the bench ends, throws or is
 * interrupted — so no PostgreSQL cluster or temp dir outlives it.
 */
export class Cleanup {
  private readonly actions: Array<{ label: string; run: () => Promise<void> | void }> = [];
  private running?: Promise<void>;

  add(label: string, run: () => Promise<void> | void): void {
    this.actions.push({ label, run });
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const action of this.actions.reverse()) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
        });
        try {
          await Promise.race([Promise.resolve().then(action.run), timeout]);
        } catch (e) {
          process.stderr.write(`cleanup: ${action.label} failed: ${e instanceof Error ? e.message : String(e)}\n`);
        } finally {
          clearTimeout(timer);
        }
      }
    })();
    return this.running;
  }

  /**
   * On SIGINT/SIGTERM: clean up, then exit with the conventional 128+signal
   * status. The listener stays installed: Ctrl-C under `npm run` reaches this
   * process twice (from the terminal and relayed by tsx), and with no listener
   * left the second one would exit at once, skipping the cleanup.
   */
  onSignals(): void {
    const handler = (signal: NodeJS.Signals) => {
      if (this.running) return;
      process.stderr.write(`\n${signal}: stopping clusters and removing temp dirs…\n`);
      void this.run().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  }
}
