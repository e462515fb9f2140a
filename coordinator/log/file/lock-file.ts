import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { TwopcError } from '../../engine/ports/protocol';
import { errnoCode, writeFully, type LogFs } from './log-fs';
import { LOCK_FILE, inDir } from './log-layout';

/** What a lock file says about its holder. */
export interface LockHolder {
  pid: number;
  host: string;
  /** When the holding process started (ms since epoch): tells this process from an earlier one that had the same pid. */
  processStart: number;
  since: string;
}

/** Where to lock, through which file system, and (for tests) who this process is. */
export interface LockOptions {
  fs: LogFs;
  dir: string;
  /** Defaults to `process.kill(pid, 0)`: alive unless it throws ESRCH. */
  isAlive?: (pid: number) => boolean;
  pid?: number;
  host?: string;
  processStart?: number;
}

/** A held lock. `release` removes the lock file only if it is still ours. */
export interface LockHandle {
  readonly holder: LockHolder;
  release(): Promise<void>;
}

const MAX_ATTEMPTS = 20;
const MAX_TAKEOVER_LEVELS = 8;

/** Whether a process with this pid exists on this host (EPERM: it exists, it is just not ours). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) !== 'ESRCH';
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    // pid <= 0 would make kill(pid, 0) probe a process group, never a holder.
    if (!Number.isInteger(v.pid) || (v.pid as number) <= 0 || typeof v.host !== 'string' || typeof v.processStart !== 'number') return undefined;
    return { pid: v.pid as number, host: v.host, processStart: v.processStart, since: String(v.since ?? '') };
  } catch {
    return undefined;
  }
}

interface ReadLock {
  holder?: LockHolder;
  ino: number;
}

/** Reads a lock-like file and its inode through one fd, so content and identity belong to the same file. */
async function readLock(fs: LogFs, path: string): Promise<ReadLock | undefined> {
  let fd: number;
  try {
    fd = await fs.open(path, 'r');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const st = await fs.fstat(fd);
    const buf = Buffer.alloc(Math.min(st.size, 4096));
    const n = await fs.read(fd, buf, 0, buf.length, 0);
    return { holder: parseHolder(buf.subarray(0, n).toString('utf8')), ino: st.ino };
  } finally {
    await fs.close(fd);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Takes the exclusive lock on a log directory, or throws `log-locked` naming
 * the directory and the holder's pid.
 *
 * The lock file `LOCK` is created whole: the holder record is written and
 * fsynced to a private temp file, which is then hard-linked to `LOCK`. link()
 * fails with EEXIST atomically, like O_EXCL, but unlike O_EXCL + write no
 * reader can ever see an empty or half-written lock.
 *
 * A lock whose pid is dead (on this host) is stale and may be taken over. Two
 * starters may find the same stale lock; unlinking it by name would let the
 * slower one delete the faster one's fresh lock. So the right to remove one
 * particular stale lock file (named by its inode) is itself taken with an
 * exclusive marker `LOCK.takeover-<ino>-<k>`; under the marker the lock is
 * re-read, and only removed if it is still that inode with that dead pid. A
 * marker left by a taker that died is skipped by moving to level k + 1.
 */
export async function acquireLock(o: LockOptions): Promise<LockHandle> {
  const fs = o.fs;
  const isAlive = o.isAlive ?? processAlive;
  const me: LockHolder = {
    pid: o.pid ?? process.pid,
    host: o.host ?? os.hostname(),
    processStart: o.processStart ?? performance.timeOrigin,
    since: new Date().toISOString(),
  };
  // A holder with our pid is either this very process (another open in it) or
  // an earlier process that had the same pid — typical of a container, where
  // the coordinator is pid 1 after every restart. The start time tells them apart.
  const holderAlive = (h: LockHolder): boolean => (h.pid === me.pid ? h.processStart === me.processStart : isAlive(h.pid));
  const lockPath = inDir(o.dir, LOCK_FILE);
  const tmp = inDir(o.dir, `${LOCK_FILE}.${me.pid}.${randomBytes(6).toString('hex')}.tmp`);

  const locked = (holder: LockHolder | undefined, why: string): TwopcError =>
    new TwopcError(
      'log-locked',
      holder
        ? `decision log ${o.dir} is locked by pid ${holder.pid} on ${holder.host}${why}`
        : `decision log ${o.dir} is locked: ${lockPath} ${why}`,
      { dir: o.dir, lockFile: lockPath, pid: holder?.pid, host: holder?.host },
    );

  const fd = await fs.open(tmp, 'wx');
  try {
    await writeFully(fs, fd, Buffer.from(JSON.stringify(me) + '\n'), 0);
    // Without this a power loss could leave LOCK linked to an empty file.
    await fs.fsync(fd);
  } finally {
    await fs.close(fd);
  }

  try {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        await fs.link(tmp, lockPath);
        const { ino } = await fs.stat(lockPath);
        return { holder: me, release: () => release(fs, lockPath, ino) };
      } catch (e) {
        if (errnoCode(e) !== 'EEXIST') throw e;
      }
      const cur = await readLock(fs, lockPath);
      if (!cur) continue;
      if (!cur.holder) throw locked(undefined, 'cannot be read; if no process uses this log, remove the file');
      if (cur.holder.host !== me.host) throw locked(cur.holder, ' (another host: its pid cannot be checked from here; remove the lock file only if that process is gone)');
      if (holderAlive(cur.holder)) throw locked(cur.holder, cur.holder.pid === me.pid ? ' (this process: it is already open)' : '');
      const busy = await takeOver(fs, o.dir, lockPath, tmp, cur, holderAlive);
      if (busy) await sleep(5 + attempt * 5);
    }
    throw locked(undefined, `could not be taken after ${MAX_ATTEMPTS} attempts (starters racing?)`);
  } finally {
    await fs.unlink(tmp).catch(() => undefined);
  }
}

/** Removes the stale lock `stale` if this process wins the right to; returns true when another live process is doing so. */
async function takeOver(fs: LogFs, dir: string, lockPath: string, tmp: string, stale: ReadLock, alive: (h: LockHolder) => boolean): Promise<boolean> {
  for (let level = 0; level < MAX_TAKEOVER_LEVELS; level++) {
    const marker = inDir(dir, `${LOCK_FILE}.takeover-${stale.ino}-${level}`);
    try {
      await fs.link(tmp, marker);
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
      const m = await readLock(fs, marker);
      if (!m) return true; // the taker just finished; look at LOCK again
      if (m.holder && alive(m.holder)) return true;
      continue; // that taker died mid-takeover: its marker is itself stale
    }
    try {
      const cur = await readLock(fs, lockPath);
      // Only the holder of this marker removes this inode, so if LOCK is still
      // that inode with a dead holder nobody can replace it before our unlink.
      if (cur && cur.ino === stale.ino && cur.holder && !alive(cur.holder)) await fs.unlink(lockPath);
    } finally {
      for (let l = level; l >= 0; l--) await fs.unlink(inDir(dir, `${LOCK_FILE}.takeover-${stale.ino}-${l}`)).catch(() => undefined);
    }
    return false;
  }
  throw new TwopcError('log-locked', `decision log ${dir}: stale lock ${lockPath} has ${MAX_TAKEOVER_LEVELS} abandoned takeover markers; remove ${LOCK_FILE}.takeover-* if no process uses this log`, {
    dir,
    lockFile: lockPath,
  });
}

async function release(fs: LogFs, lockPath: string, ino: number): Promise<void> {
  const cur = await fs.stat(lockPath).catch(() => undefined);
  // Never remove a lock that is not ours (it can only differ if someone removed ours by hand).
  if (cur && cur.ino === ino) await fs.unlink(lockPath).catch((e) => (errnoCode(e) === 'ENOENT' ? undefined : Promise.reject(e)));
}
