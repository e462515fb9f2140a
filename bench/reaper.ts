import { spawn } from 'node:child_process';

export interface ReaperTargets {
  /** PostgreSQL data directories: their postmaster gets SIGQUIT. */
  dataDirs: string[];
  /** Directories to remove (temp root, cluster dirs). */
  dirs: string[];
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A detached shell that outlives this process and, once it is gone, stops the
 * clusters and removes the temp dirs. The in-process cleanup normally does
 * this first and the reaper finds nothing left; it matters when this process
 * is killed outright: under `npm run bench`, tsx answers Ctrl-C by sending
 * SIGKILL to its child if the child is slow (>30 ms) to acknowledge the signal,
 * which a loaded machine easily is.
 */
export function startReaper(targets: ReaperTargets, keepDirs: boolean): void {
  const stop = targets.dataDirs.map((d) => `pid=$(head -n 1 ${quote(`${d}/postmaster.pid`)} 2>/dev/null) && kill -QUIT "$pid" 2>/dev/null`).join('; ');
  const remove = keepDirs ? 'true' : `rm -rf ${targets.dirs.map(quote).join(' ')}`;
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ${stop || 'true'}; sleep 2; ${remove}`;
  const child = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  child.unref();
}
