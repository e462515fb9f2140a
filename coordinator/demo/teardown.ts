// A step that hangs (a process that ignores SIGTERM, a server that will not stop) must not keep the rest alive.
const STEP_TIMEOUT_MS = 20_000;

/**
 * Undo steps run once, newest first, whether the demo ends, fails or is
 * interrupted, so no process, PostgreSQL server or temp dir outlives it.
 * A failing step is reported and the next one still runs.
 */
export class Teardown {
  private readonly steps: Array<{ label: string; run: () => Promise<unknown> | void }> = [];
  private running?: Promise<void>;

  constructor(private readonly report: (line: string) => void) {}

  add(label: string, run: () => Promise<unknown> | void): void {
    this.steps.push({ label, run });
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.reverse()) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
        });
        try {
          await Promise.race([Promise.resolve().then(step.run), timeout]);
        } catch (e) {
          this.report(`teardown: ${step.label} failed: ${e instanceof Error ? e.message : String(e)}`);
        } finally {
          clearTimeout(timer);
        }
      }
    })();
    return this.running;
  }
}
