import fs from 'node:fs';
import { nodeLogFs, type LogFs } from '../../coordinator/log/file/log-fs';

/**
 * What-if: the file log's record writes made with `fs.writeSync` on the main
 * thread instead of a libuv thread-pool round trip (fdatasync stays async).
 * The speed-up over `engine` is what handing each write to the pool costs.
 */
export function syncWriteLogFs(): LogFs {
  const base = nodeLogFs();
  return {
    ...base,
    write: (fd, buffer, offset, length, position) => {
      try {
        return Promise.resolve(fs.writeSync(fd, buffer, offset, length, position));
      } catch (e) {
        return Promise.reject(e);
      }
    },
  };
}
