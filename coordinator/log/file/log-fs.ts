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
  fdatasync: promisify(fs.fdatasync),
  fsync: promisify(fs.fsync),
  fstat: promisify(fs.fstat),
  ftruncate: promisify(fs.ftruncate),
  close: promisify(fs.close),
  rename: promisify(fs.rename),
  link: promisify(fs.link),
  unlink: promisify(fs.unlink),
};

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
    // The callback form: one promise per write, where promisify's and an async wrapper's made three.
    write: (fd, buffer, offset, length, position) =>
      new Promise((resolve, reject) => fs.write(fd, buffer, offset, length, position, (err, written) => (err ? reject(err) : resolve(written)))),
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

/**
 * Writes all of `buffer` at `position`, looping over short writes. Chained, not
 * async: a record batch's write (one call, almost always whole) costs one
 * promise more than the seam's own.
 */
export function writeFully(lfs: LogFs, fd: number, buffer: Buffer, position: number): Promise<void> {
  const from = (done: number): Promise<void> =>
    // Promise.resolve: a LogFs given in options may answer with a plain number.
    Promise.resolve(lfs.write(fd, buffer, done, buffer.length - done, position + done)).then((n) => {
      if (n <= 0) throw new Error(`write returned ${n} with ${buffer.length - done} bytes left`);
      return done + n < buffer.length ? from(done + n) : undefined;
    });
  return buffer.length === 0 ? Promise.resolve() : from(0);
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
