import { nodeLogFs, type LogFs } from '../../coordinator/log/file/log-fs';
import type { Tally } from './tally';

/** Calls worth counting on the hot path: how many writes and syncs the file log issues per transfer. */
const TIMED = ['write', 'fdatasync', 'fsync', 'open', 'rename', 'unlink', 'ftruncate'] as const;

/** The real file system behind the file log's own seam, with the calls above counted and timed. */
export function timedLogFs(tally: Tally, fs: LogFs = nodeLogFs()): LogFs {
  const timed = { ...fs };
  for (const name of TIMED) {
    const call = fs[name] as (...args: unknown[]) => Promise<unknown>;
    (timed as Record<string, unknown>)[name] = (...args: unknown[]) => tally.time(`logfs: ${name}`, () => call(...args));
  }
  return timed;
}
