import { TwopcError } from '../../engine/ports/protocol';
import { fsyncDir, writeFully, type LogFs } from './log-fs';
import { inDir, snapshotName, snapshotTempName } from './log-layout';
import { decodePayload, encodeFrame, scanFrames } from './record-codec';
import { frameRecord, type ReadRecord } from './segment-reader';

/** The first frame of every snapshot file. */
export interface SnapshotHeader {
  snapshot: 1;
  /** The snapshot holds every kept record of segments 1..through. */
  through: number;
  /** How many record frames follow: a short snapshot is damage, not a smaller state. */
  records: number;
}

// Written in chunks of about this size, yielding between them, so a large
// snapshot does not stall the event loop (and the group commit) for long.
const CHUNK_BYTES = 1024 * 1024;

const yieldTurn = () => new Promise<void>((r) => setImmediate(r));

/** Frames made while the snapshot is written, one chunk at a time (outcome records: see TxIndex.cut). */
export interface LazyFrames {
  count: number;
  frame(i: number): Buffer;
}

const NO_FRAMES: LazyFrames = { count: 0, frame: () => Buffer.alloc(0) };

/** A snapshot written and installed. */
export interface WrittenSnapshot {
  bytes: number;
  /** Where each of `frames` landed, in the order given (the lazy frames after them are not tracked). */
  offsets: number[];
}

/**
 * Writes a snapshot through segment `through` from already framed (and
 * checked) records, and installs it: temp file, fsync, rename, directory
 * fsync. Until the rename the temp file is ignored (and removed by the next
 * open) and the segments it covers are untouched, so a crash at any point
 * before leaves the old state whole; after the directory fsync the snapshot
 * stands in for those segments.
 */
export async function writeSnapshot(fs: LogFs, dir: string, through: number, frames: readonly Buffer[], lazy: LazyFrames = NO_FRAMES): Promise<WrittenSnapshot> {
  const tmp = inDir(dir, snapshotTempName(through));
  const fd = await fs.open(tmp, 'w');
  const offsets: number[] = new Array<number>(frames.length);
  let size = 0;
  try {
    const header: SnapshotHeader = { snapshot: 1, through, records: frames.length + lazy.count };
    let chunk: Buffer[] = [encodeFrame(header)];
    let chunkBytes = chunk[0].length;
    const flush = async () => {
      await writeFully(fs, fd, Buffer.concat(chunk, chunkBytes), size);
      size += chunkBytes;
      chunk = [];
      chunkBytes = 0;
    };
    for (let i = 0; i < frames.length; i++) {
      offsets[i] = size + chunkBytes;
      chunk.push(frames[i]);
      chunkBytes += frames[i].length;
      if (chunkBytes >= CHUNK_BYTES) {
        await flush();
        await yieldTurn();
      }
    }
    // Encoded here, a chunk at a time, so neither the work nor the frames pile up on one turn.
    for (let i = 0; i < lazy.count; i++) {
      const frame = lazy.frame(i);
      chunk.push(frame);
      chunkBytes += frame.length;
      if (chunkBytes >= CHUNK_BYTES) {
        await flush();
        await yieldTurn();
      }
    }
    if (chunkBytes > 0) await flush();
    // Content on disk before the name says "snapshot": otherwise a power loss
    // after the rename could leave a short snapshot and no segments behind it.
    await fs.fsync(fd);
  } catch (e) {
    await fs.close(fd).catch(() => undefined);
    await fs.unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fs.close(fd);
  await fs.rename(tmp, inDir(dir, snapshotName(through)));
  await fsyncDir(fs, dir);
  return { bytes: size, offsets };
}

/** A snapshot read back. */
export interface LoadedSnapshot {
  through: number;
  records: ReadRecord[];
  bytes: number;
}

function headerOf(value: unknown): SnapshotHeader | undefined {
  const h = value as Partial<SnapshotHeader> | null;
  if (typeof h !== 'object' || h === null || h.snapshot !== 1) return undefined;
  if (!Number.isInteger(h.through) || !Number.isInteger(h.records)) return undefined;
  return h as SnapshotHeader;
}

/**
 * Reads a snapshot. A snapshot was fsynced before it was renamed into place,
 * so any damage in it — even at its end — is corruption, never a torn tail:
 * throws `log-corrupt` naming the file and offset.
 */
export async function readSnapshot(fs: LogFs, dir: string, file: string, expectedThrough: number): Promise<LoadedSnapshot> {
  const path = inDir(dir, file);
  const buf = await fs.readFile(path);
  const corrupt = (offset: number, reason: string) =>
    new TwopcError('log-corrupt', `decision log snapshot ${path} is damaged at byte offset ${offset}: ${reason}`, { file: path, offset, reason });
  const scan = scanFrames(buf);
  if (scan.damages.length > 0) throw corrupt(scan.damages[0].offset, scan.damages[0].reason);
  const [first, ...rest] = scan.frames;
  let header: SnapshotHeader | undefined;
  try {
    header = first ? headerOf(decodePayload(first.payload)) : undefined;
  } catch {
    header = undefined;
  }
  if (!header) throw corrupt(0, 'missing or malformed snapshot header');
  if (header.through !== expectedThrough) throw corrupt(0, `header says it covers segments through ${header.through}, its name says ${expectedThrough}`);
  if (header.records !== rest.length) throw corrupt(buf.length, `header promises ${header.records} records, the file holds ${rest.length}`);
  const records: ReadRecord[] = [];
  for (const f of rest) {
    const r = frameRecord(f);
    if (typeof r === 'string') throw corrupt(f.offset, r);
    records.push({ offset: f.offset, record: r });
  }
  return { through: header.through, records, bytes: buf.length };
}
