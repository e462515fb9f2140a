import { nodeLogFs, type LogFs } from '../../coordinator/log/file/log-fs';

/** node's fs, with a disk that, once armed, fails the next fdatasync and loses what was written since the last good one. */
export function losingFs(): { fs: LogFs; arm(): void } {
  const base = nodeLogFs();
  const synced = new Map<number, number>();
  let armed = false;
  const lfs: LogFs = {
    ...base,
    open: async (p, flags) => {
      const fd = await base.open(p, flags);
      synced.set(fd, (await base.fstat(fd)).size);
      return fd;
    },
    fdatasync: async (fd) => {
      if (armed) {
        armed = false;
        await base.ftruncate(fd, synced.get(fd) ?? 0);
        throw Object.assign(new Error('EIO: injected'), { code: 'EIO', syscall: 'fdatasync' });
      }
      const size = (await base.fstat(fd)).size;
      await base.fdatasync(fd);
      synced.set(fd, size);
    },
  };
  return { fs: lfs, arm: () => (armed = true) };
}
