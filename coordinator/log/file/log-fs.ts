import fs from 'node:fs';
import { promisify } from 'node:util';

/** What the file log needs to know of a file. */
export interface LogFileStat {
  size: number;
  ino: number;
}

/**
 * The file-system calls the file log makes, and nothing else. Every call goes
 * through this seam so tests can inject ENOSPC / EIO at an exact call, and so
 * the store never touches `fs` behind it. Paths are absolute; fds are numbers.
 */
export interface LogFs {
  mkdir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Buffer>;
  stat(path: string): Promise<LogFileStat>;
  /** Node flag strings: `r`, `r+`, `w`, `wx`. */
  open(path: string, flags: string): Promise<number>;
  read(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** May write fewer bytes than asked; returns how many it wrote. */
  write(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  fdatasync(fd: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  fstat(fd: number): Promise<LogFileStat>;
  ftruncate(fd: number, length: number): Promise<void>;
  close(fd: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  link(existing: string, newPath: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

const p = {
  mkdir: promisify(fs.mkdir),
  readdir: promisify(fs.readdir),
  readFile: promisify(fs.readFile),
  stat: promisify(fs.stat),
  open: promisify(fs.open),
  read: promisify(fs.read),
  write: promisify(fs.write),
  fdatasync: promisify(fs.fdatasync),
  fsync: promisify(fs.fsync),
  fstat: promisify(fs.fstat),
  ftruncate: promisify(fs.ftruncate),
  close: promisify(fs.close),
  rename: promisify(fs.rename),
  link: promisify(fs.link),
  unlink: promisify(fs.unlink),
};

// A record write is a few hundred bytes into the page cache: a few microseconds as a
// syscall on the event loop, against a thread-pool round trip (hand-off to a worker,
// its wake-up, the completion's wake-up of the loop) that costs the process far more
// CPU, and one more hop of latency per transaction at low concurrency. So small writes
// are made on the loop, fdatasync stays on the pool. A write the kernel holds up (dirty
// page throttling under another process's writeback) would stall the whole loop: after
// one write slower than SLOW_WRITE_MS, writes go to the pool for POOL_AFTER_SLOW_MS.
export const LOOP_WRITE_MAX_BYTES = 64 * 1024;
export const SLOW_WRITE_MS = 2;
export const POOL_AFTER_SLOW_MS = 10_000;

/** How loopOrPoolWrite writes and tells time (the real ones by default; tests pass their own). */
export interface LoopOrPoolDeps {
  writeSync(fd: number, buffer: Buffer, offset: number, length: number, position: number): number;
  poolWrite(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  now(): number;
}

const realDeps: LoopOrPoolDeps = {
  writeSync: (fd, buffer, offset, length, position) => fs.writeSync(fd, buffer, offset, length, position),
  poolWrite: async (fd, buffer, offset, length, position) => (await p.write(fd, buffer, offset, length, position)).bytesWritten,
  now: () => performance.now(),
};

/** `write` on the event loop while such writes stay small and fast, else on the thread pool (see above). */
export function loopOrPoolWrite(deps: LoopOrPoolDeps = realDeps): LogFs['write'] {
  let poolUntil = 0;
  return (fd, buffer, offset, length, position) => {
    if (length > LOOP_WRITE_MAX_BYTES || (poolUntil !== 0 && deps.now() < poolUntil)) return deps.poolWrite(fd, buffer, offset, length, position);
    const started = deps.now();
    try {
      const written = deps.writeSync(fd, buffer, offset, length, position);
      const ended = deps.now();
      poolUntil = ended - started > SLOW_WRITE_MS ? ended + POOL_AFTER_SLOW_MS : 0;
      return Promise.resolve(written);
    } catch (e) {
      return Promise.reject(e);
    }
  };
}

/**
 * The real file system. Callback `fs` under promisify rather than
 * `fs/promises` FileHandles: one fewer object per call on the hot path.
 */
export function nodeLogFs(): LogFs {
  return {
    mkdir: async (path) => {
      await p.mkdir(path, { recursive: true });
    },
    readdir: (path) => p.readdir(path),
    readFile: (path) => p.readFile(path),
    stat: async (path) => {
      const s = await p.stat(path);
      return { size: s.size, ino: s.ino };
    },
    open: (path, flags) => p.open(path, flags, 0o644),
    read: async (fd, buffer, offset, length, position) => (await p.read(fd, buffer, offset, length, position)).bytesRead,
    write: loopOrPoolWrite(),
    fdatasync: (fd) => p.fdatasync(fd),
    fsync: (fd) => p.fsync(fd),
    fstat: async (fd) => {
      const s = await p.fstat(fd);
      return { size: s.size, ino: s.ino };
    },
    ftruncate: (fd, length) => p.ftruncate(fd, length),
    close: (fd) => p.close(fd),
    rename: (from, to) => p.rename(from, to),
    link: (existing, newPath) => p.link(existing, newPath),
    unlink: (path) => p.unlink(path),
  };
}

/** The `code` of a Node system error (`ENOENT`, `EEXIST`, ...), if any. */
export function errnoCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Writes all of `buffer` at `position`, looping over short writes. */
export async function writeFully(lfs: LogFs, fd: number, buffer: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const n = await lfs.write(fd, buffer, done, buffer.length - done, position + done);
    if (n <= 0) throw new Error(`write returned ${n} with ${buffer.length - done} bytes left`);
    done += n;
  }
}

/**
 * fsyncs a directory, so that a file created, renamed or removed in it stays
 * so after a power loss (the entry lives in the directory, not the file).
 */
export async function fsyncDir(lfs: LogFs, dir: string): Promise<void> {
  const fd = await lfs.open(dir, 'r');
  try {
    await lfs.fsync(fd);
  } finally {
    await lfs.close(fd);
  }
}
