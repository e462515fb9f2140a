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
        try {
          await action.run();
        } catch (e) {
          process.stderr.write(`cleanup: ${action.label} failed: ${e instanceof Error ? e.message : String(e)}\n`);
        }
      }
    })();
    return this.running;
  }

  /** On SIGINT/SIGTERM: clean up, then exit with the conventional 128+signal status. */
  onSignals(): void {
    const handler = (signal: NodeJS.Signals) => {
      process.stderr.write(`\n${signal}: stopping clusters and removing temp dirs…\n`);
      void this.run().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    };
    process.once('SIGINT', handler);
    process.once('SIGTERM', handler);
  }
}
