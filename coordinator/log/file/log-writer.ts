import { TwopcError, errorMessage } from '../../engine/ports/protocol';
import { fsyncDir, writeFully, type LogFs } from './log-fs';
import { inDir, segmentName } from './log-layout';
import type { StoredRecord } from '../tx-index';

/** The segment records are appended to. */
export interface ActiveSegment {
  seq: number;
  fd: number;
  /** Bytes written so far; the next write goes here. */
  size: number;
}

/** How the writer writes: where, how big a segment gets, whether forced records share a sync. */
export interface LogWriterOptions {
  fs: LogFs;
  dir: string;
  segmentBytes: number;
  /** When false every record is written (and synced, if forced) on its own: the baseline group commit is measured against. */
  groupCommit: boolean;
  /** Called after a segment is sealed (synced, closed, its successor created). */
  onSealed: (seq: number, bytes: number) => void;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

interface Batch {
  kind: 'batch';
  frames: Buffer[];
  stored: StoredRecord[];
  bytes: number;
  forced: boolean;
  /** False while it holds only unhurried records (see enqueue): the write loop leaves it until the end of the turn. */
  hurried: boolean;
  // Created only when someone waits on them, so a failed batch never leaves an unhandled rejection.
  written?: Deferred<void>;
  synced?: Deferred<void>;
}

interface RotateRequest {
  kind: 'rotate';
  done: Deferred<number>;
}

type QueueItem = Batch | RotateRequest;

/**
 * The single writer of the active segment, and the group commit.
 *
 * Callers queue framed records; one loop takes everything queued and writes it
 * with one write call, then resolves the batch's unforced records at once. A
 * batch holding forced records hands them to the sync loop, which fdatasyncs
 * and then resolves every forced record written before that fdatasync began.
 * The two loops overlap: records queued while a sync is in flight are written
 * meanwhile (an unforced record never waits for someone else's fdatasync), and
 * the forced ones among them share the next sync, so N concurrent forced
 * decisions cost about one fdatasync, not N. Queue order is write order, so
 * records keep append order.
 *
 * After any failed write, sync, or rotation the writer is failed for good:
 * the failing batch and everything queued behind it reject with
 * `log-unavailable`, and so does every later call. Retrying would mean
 * guessing what reached the disk (after a failed fsync the kernel may already
 * have dropped the dirty pages).
 */
export class LogWriter {
  private readonly queue: QueueItem[] = [];
  /** Forced records already written, waiting for an fdatasync that starts after their write returned. */
  private syncWaiters: Array<Deferred<void>> = [];
  private syncing?: Promise<void>;
  private running = false;
  /** The end-of-turn write of unhurried records (kickSoon), while one is due. */
  private soon?: NodeJS.Immediate;
  /** The write loop while it runs: close() waits for it, so no write is in flight on a closed fd. */
  private loop?: Promise<void>;
  private failure?: TwopcError;
  private op = '';

  constructor(
    private readonly o: LogWriterOptions,
    private active: ActiveSegment,
  ) {}

  get activeSeq(): number {
    return this.active.seq;
  }

  get activeSize(): number {
    return this.active.size;
  }

  /** The error that failed the writer, if one did. */
  get failed(): TwopcError | undefined {
    return this.failure;
  }

  /** A fresh `log-unavailable` error for a call made after the writer failed. */
  unavailable(): TwopcError {
    const f = this.failure!;
    return new TwopcError('log-unavailable', f.message, { ...f.details }, { cause: f.cause });
  }

  /**
   * Queues a framed record. Resolves once it is written (the write syscall
   * returned: a process crash can no longer lose it), or, when `forced`, once
   * it is also fdatasync'ed.
   */
  enqueue(frame: Buffer, stored: StoredRecord, forced: boolean, unhurried = false): Promise<void> {
    if (this.failure) return Promise.reject(this.unavailable());
    const b = this.openBatch(frame.length);
    b.frames.push(frame);
    b.stored.push(stored);
    b.bytes += frame.length;
    let d: Deferred<void>;
    if (forced) {
      b.forced = true;
      d = b.synced ??= deferred();
    } else {
      d = b.written ??= deferred();
    }
    if (forced || !unhurried) b.hurried = true;
    if (b.hurried) this.kick();
    else this.kickSoon();
    return d.promise;
  }

  /**
   * An unhurried record (a `complete`: no caller waits for it on a
   * transaction's path; an in-process registration: only a PREPARE some round
   * trips later waits for it) starts no write of its own: it joins whatever
   * is written next in this turn of the event loop, and is written at the end
   * of the turn if nothing else was. Queue order is kept either way. At
   * concurrency 1 a transaction's begin and registrations (with the previous
   * one's `complete`) so go to the thread pool after its BEGINs went out,
   * not in the middle of sending them.
   */
  private kickSoon(): void {
    this.soon ??= setImmediate(() => {
      this.soon = undefined;
      for (const item of this.queue) if (item.kind === 'batch') item.hurried = true;
      this.kick();
    });
  }

  /** Resolves once everything queued before the call is written and synced. */
  sync(): Promise<void> {
    if (this.failure) return Promise.reject(this.unavailable());
    const last = this.queue.at(-1);
    const b: Batch = last?.kind === 'batch' ? last : this.newBatch();
    b.forced = true;
    b.hurried = true;
    b.synced ??= deferred();
    this.kick();
    return b.synced.promise;
  }

  /**
   * Seals the active segment (if it holds anything) after everything queued
   * before the call. Resolves with N such that every segment <= N is sealed.
   */
  rotate(): Promise<number> {
    if (this.failure) return Promise.reject(this.unavailable());
    const done = deferred<number>();
    this.queue.push({ kind: 'rotate', done });
    this.kick();
    return done.promise;
  }

  /** Syncs what is queued (unless failed) and closes the active segment. */
  async close(): Promise<void> {
    try {
      if (!this.failure) await this.sync();
    } finally {
      // After a failure sync() rejects at once, while a write of the failed loop may still run.
      await this.loop;
      await this.syncing;
      const fd = this.active.fd;
      this.active.fd = -1;
      if (fd >= 0) await this.o.fs.close(fd).catch(() => undefined);
    }
  }

  private newBatch(): Batch {
    const b: Batch = { kind: 'batch', frames: [], stored: [], bytes: 0, forced: false, hurried: false };
    this.queue.push(b);
    return b;
  }

  private openBatch(bytes: number): Batch {
    const last = this.queue.at(-1);
    if (last?.kind === 'batch') {
      const fits = this.o.groupCommit ? last.bytes + bytes <= this.o.segmentBytes : last.frames.length === 0;
      if (fits || last.frames.length === 0) return last;
    }
    return this.newBatch();
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    let loopDone!: () => void;
    this.loop = new Promise((resolve) => (loopDone = resolve));
    // Start after the current synchronous run, so callers queuing in the same
    // tick share the first batch; but not a whole event-loop turn later: while
    // this batch is written and synced, the callers of the previous one run
    // their JavaScript and queue the next, which keeps the CPU busy during the
    // fdatasync instead of idle.
    queueMicrotask(() => void this.run().finally(loopDone));
  }

  private async run(): Promise<void> {
    while (this.queue.length > 0) {
      // Unhurried records alone at the end of the queue wait for company, or for the end of the turn.
      if (this.queue.length === 1 && this.queue[0].kind === 'batch' && !this.queue[0].hurried && !this.failure) {
        this.kickSoon();
        break;
      }
      const item = this.queue.shift()!;
      if (this.failure) {
        this.rejectItem(item, this.unavailable());
        continue;
      }
      try {
        if (item.kind === 'rotate') {
          if (this.active.size > 0) await this.seal();
          item.done.resolve(this.active.seq - 1);
        } else {
          await this.writeBatch(item);
        }
      } catch (e) {
        this.rejectItem(item, this.fail(e));
      }
    }
    this.running = false;
  }

  private fail(e: unknown): TwopcError {
    this.failure ??= new TwopcError(
      'log-unavailable',
      `decision log ${this.o.dir}: ${this.op} failed (${errorMessage(e)}); the log refuses further writes until it is reopened`,
      { dir: this.o.dir, operation: this.op },
      { cause: e },
    );
    return this.failure;
  }

  private startSync(): void {
    this.syncing ??= this.syncLoop().finally(() => {
      this.syncing = undefined;
    });
  }

  /**
   * Every waiter taken here was added after its record's write returned, and
   * the fdatasync starts after that, so it covers them all. Waiters added
   * while it runs wait for the next round.
   */
  private async syncLoop(): Promise<void> {
    while (this.syncWaiters.length > 0 && !this.failure) {
      const covered = this.syncWaiters;
      this.syncWaiters = [];
      try {
        await this.o.fs.fdatasync(this.active.fd);
      } catch (e) {
        this.op = `fdatasync ${segmentName(this.active.seq)}`;
        const error = this.fail(e);
        for (const d of covered.concat(this.syncWaiters.splice(0))) d.reject(error);
        return;
      }
      for (const d of covered) d.resolve();
    }
    if (this.failure) for (const d of this.syncWaiters.splice(0)) d.reject(this.unavailable());
  }

  private rejectItem(item: QueueItem, error: TwopcError): void {
    if (item.kind === 'rotate') {
      item.done.reject(error);
      return;
    }
    item.written?.reject(error);
    item.synced?.reject(error);
  }

  private async writeBatch(b: Batch): Promise<void> {
    const fs = this.o.fs;
    if (b.bytes > 0) {
      if (this.active.size > 0 && this.active.size + b.bytes > this.o.segmentBytes) await this.seal();
      const a = this.active;
      this.op = `write ${segmentName(a.seq)}`;
      await writeFully(fs, a.fd, b.frames.length === 1 ? b.frames[0] : Buffer.concat(b.frames, b.bytes), a.size);
      let offset = a.size;
      for (let i = 0; i < b.stored.length; i++) {
        b.stored[i].seq = a.seq;
        b.stored[i].offset = offset;
        offset += b.frames[i].length;
      }
      a.size += b.bytes;
    }
    b.written?.resolve();
    if (b.forced && b.synced) {
      if (!this.o.groupCommit) {
        // The baseline: each forced record pays for its own fdatasync before the next is written.
        this.op = `fdatasync ${segmentName(this.active.seq)}`;
        await fs.fdatasync(this.active.fd);
        b.synced.resolve();
        return;
      }
      this.syncWaiters.push(b.synced);
      this.startSync();
    }
  }

  private async seal(): Promise<void> {
    const fs = this.o.fs;
    // No fdatasync may still run on the fd about to be closed; the seal's own sync covers any waiter left.
    await this.syncing;
    const old = this.active;
    // Synced before its successor exists, so a sealed segment is always whole
    // on disk: after a crash a torn record can only be in the last segment,
    // and damage anywhere else is real corruption.
    this.op = `fdatasync ${segmentName(old.seq)}`;
    await fs.fdatasync(old.fd);
    for (const d of this.syncWaiters.splice(0)) d.resolve();
    this.op = `close ${segmentName(old.seq)}`;
    this.active = { seq: old.seq + 1, fd: -1, size: 0 };
    await fs.close(old.fd);
    const name = segmentName(old.seq + 1);
    this.op = `create ${name}`;
    this.active.fd = await fs.open(inDir(this.o.dir, name), 'wx');
    // The new file's directory entry must be durable before any forced record
    // in it is acknowledged, or a power loss could take the whole file.
    this.op = `fsync directory after creating ${name}`;
    await fsyncDir(fs, this.o.dir);
    this.o.onSealed(old.seq, old.size);
  }
}
