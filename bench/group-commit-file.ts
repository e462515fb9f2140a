import { open, FileHandle } from 'node:fs/promises';

interface Pending {
  data: Buffer;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * The raw mode's decision file: an append-only file with group commit. While
 * one batch is being written and fdatasync'ed, new records queue up; the next
 * batch takes all of them, so concurrent decisions share one write and one
 * fdatasync. This is the minimum a durable commit decision costs.
 */
export class GroupCommitFile {
  private queue: Pending[] = [];
  private flushing = false;
  private position = 0;
  private failed?: unknown;
  /** For the profile: how many fdatasyncs, and how many records they carried. */
  batches = 0;
  records = 0;

  private constructor(private readonly handle: FileHandle) {}

  static async create(path: string): Promise<GroupCommitFile> {
    return new GroupCommitFile(await open(path, 'wx'));
  }

  /** Resolves once `line` is on stable storage. */
  append(line: string): Promise<void> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.queue.push({ data: Buffer.from(line), resolve, reject });
      if (!this.flushing) void this.flushLoop();
    });
  }

  async close(): Promise<void> {
    while (this.flushing) await new Promise((r) => setImmediate(r));
    await this.handle.close();
  }

  private async flushLoop(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        const buffer = Buffer.concat(batch.map((p) => p.data));
        for (let done = 0; done < buffer.length; ) {
          const { bytesWritten } = await this.handle.write(buffer, done, buffer.length - done, this.position + done);
          done += bytesWritten;
        }
        await this.handle.datasync();
        this.position += buffer.length;
        this.batches += 1;
        this.records += batch.length;
        for (const p of batch) p.resolve();
      } catch (e) {
        // What reached the disk is unknown: refuse every later decision rather than guess.
        this.failed = e;
        for (const p of [...batch, ...this.queue]) p.reject(e);
        this.queue = [];
      }
    }
    this.flushing = false;
  }
}
