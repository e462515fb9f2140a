/**
 * Makes a process the chaos runner started end itself once the runner is
 * gone (it was SIGKILLed, or crashed before its cleanup ran): it would
 * otherwise keep serving on a port nobody watches. A process whose parent
 * died is re-parented, so its ppid changes.
 *
 * @example
 * exitWithParent(); // first thing in a child's entry point
 */
export function exitWithParent(intervalMs = 1_000): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL');
  }, intervalMs);
  timer.unref();
}
