import fs from 'node:fs';
import { nodeLogFs, type LogFs } from '../../coordinator/log/file/log-fs';

/**
 * What-if: the file log's record writes always made with `fs.writeSync` on the
 * main thread (fdatasync stays async). The real file system does so only while
 * writes are small and fast (log-fs.ts, loopOrPoolWrite); the difference from
 * `engine` is what that guard costs.
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
