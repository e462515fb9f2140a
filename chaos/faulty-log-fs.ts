import { TwopcError } from '../coordinator/engine/ports/protocol';
import type { LogFs } from '../coordinator/log/file/log-fs';

export const LOG_FAULT_OPS = ['write', 'fdatasync'] as const;
export const LOG_FAULT_CODES = ['ENOSPC', 'EIO'] as const;

/** A storage fault: the `at`-th call of `op` fails with `code`, and so does every later write and sync. */
export interface LogFaultSpec {
  op: (typeof LOG_FAULT_OPS)[number];
  code: (typeof LOG_FAULT_CODES)[number];
  at: number;
}

/**
 * Parses `<write|fdatasync>:<ENOSPC|EIO>:<n>`.
 *
 * @example
 * parseLogFault('write:ENOSPC:40', 'TWOPC_TEST_ONLY_LOG_FAULT') // the 40th write finds the disk full
 */
export function parseLogFault(spec: string, field: string): LogFaultSpec {
  const [op, code, at] = spec.split(':');
  const n = Number(at);
  if (!(LOG_FAULT_OPS as readonly string[]).includes(op) || !(LOG_FAULT_CODES as readonly string[]).includes(code) || !Number.isInteger(n) || n < 1) {
    throw new TwopcError('invalid-config', `${field} must be <${LOG_FAULT_OPS.join('|')}>:<${LOG_FAULT_CODES.join('|')}>:<n >= 1> (got ${JSON.stringify(spec)})`, { field });
  }
  return { op: op as LogFaultSpec['op'], code: code as LogFaultSpec['code'], at: n };
}

function errnoError(code: string, syscall: string, path: string): Error {
  return Object.assign(new Error(`${code}: injected (test-only log fault), ${syscall} '${path}'`), { code, syscall, path });
}

/**
 * Wraps the file log's file system so that it fails the way a real disk does:
 *
 * - `write:ENOSPC:n`: the n-th write is short (half its bytes reach the file,
 *   as when the disk fills mid-write), and every write after it fails, so the
 *   log's write loop ends on ENOSPC with a torn record at the end of the segment;
 * - `fdatasync:EIO:n`: the n-th fdatasync fails, and the file loses everything
 *   written since its last successful sync, as Linux may drop dirty pages after
 *   a failed writeback: what was only written, never synced, is gone on restart.
 *
 * After the fault the "disk" stays broken for the life of the process; a
 * restart (a new process, without the switch) sees a healthy disk again.
 */
export function faultyLogFs(base: LogFs, spec: LogFaultSpec, onFault: (message: string) => void): LogFs {
  let calls = 0;
  let broken = false;
  const paths = new Map<number, string>();
  // Size of each open file as of its last successful sync (or its open): what survives a dropped page cache.
  const synced = new Map<number, number>();
  const trip = (syscall: string, fd: number): boolean => {
    if (broken) return true;
    if (syscall !== spec.op || ++calls < spec.at) return false;
    broken = true;
    onFault(`TEST ONLY: injected ${spec.code} on ${syscall} #${spec.at} of ${paths.get(fd) ?? `fd ${fd}`}; the disk stays broken until restart`);
    return true;
  };
  const sync = async (fd: number, real: (fd: number) => Promise<void>, syscall: string): Promise<void> => {
    if (trip(syscall, fd)) {
      const keep = synced.get(fd);
      if (syscall === 'fdatasync' && spec.op === 'fdatasync' && keep !== undefined) await base.ftruncate(fd, keep).catch(() => undefined);
      throw errnoError(spec.code, syscall, paths.get(fd) ?? '');
    }
    const size = (await base.fstat(fd)).size;
    await real(fd);
    synced.set(fd, size);
  };
  return {
    ...base,
    open: async (path, flags) => {
      const fd = await base.open(path, flags);
      paths.set(fd, path);
      synced.set(fd, (await base.fstat(fd)).size);
      return fd;
    },
    close: async (fd) => {
      paths.delete(fd);
      synced.delete(fd);
      await base.close(fd);
    },
    write: async (fd, buffer, offset, length, position) => {
      if (!broken && trip('write', fd) && spec.code === 'ENOSPC' && length > 1) {
        // The write that fills the disk: part of it lands, the rest (and everything after) does not.
        return base.write(fd, buffer, offset, Math.floor(length / 2), position);
      }
      if (broken) throw errnoError(spec.code, 'write', paths.get(fd) ?? '');
      return base.write(fd, buffer, offset, length, position);
    },
    fdatasync: (fd) => sync(fd, base.fdatasync, 'fdatasync'),
    fsync: (fd) => sync(fd, base.fsync, 'fsync'),
  };
}
