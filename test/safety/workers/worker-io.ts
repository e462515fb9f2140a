import readline from 'node:readline';

/** One JSON line on stdout: what the test waits for. */
export function emit(event: string, details: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...details })}\n`);
}

/** Runs `handle` for each JSON command on stdin, one at a time; `exit` ends the process after `close`. */
export function serveCommands(handle: (command: Record<string, unknown>) => Promise<void>, close: () => Promise<void>): void {
  const lines = readline.createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  lines.on('line', (line) => {
    const command = JSON.parse(line) as Record<string, unknown>;
    queue = queue.then(async () => {
      if (command.cmd === 'exit') {
        await close().catch(() => undefined);
        process.exit(0);
      }
      await handle(command).catch((e: unknown) => emit('error', { cmd: command.cmd, message: e instanceof Error ? e.message : String(e) }));
    });
  });
}

/** The stable code of a twopc error, or its message. */
export function codeOf(e: unknown): string {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string') return e.code;
  return e instanceof Error ? e.message : String(e);
}
