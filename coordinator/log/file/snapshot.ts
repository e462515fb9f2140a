import { TwopcError } from '../../engine/ports/protocol';
import { fsyncDir, writeFully, type LogFs } from './log-fs';
import { inDir, snapshotName, snapshotTempName } from './log-layout';
import { crc32 } from './crc32';
import { decodePayload, encodeFrame, FRAME_HEADER_BYTES, frameJson, scanFrames } from './record-codec';
import { frameRecord, type ReadRecord } from './segment-reader';

/** The first frame of every snapshot file. */
export interface SnapshotHeader {
  snapshot: 1;
  /** The snapshot holds every kept record of segments 1..through. */
  through: number;
  /** How many record frames follow: a short snapshot is damage, not a smaller state. */
  records: number;
}

// Written in chunks of this size, yielding between them, so a large snapshot
// does not stall the event loop (and the group commit) for long. One chunk
// buffer is filled and written again and again: a buffer (and a frame) per
// chunk left the whole snapshot's size in garbage outside the heap (external
// memory 7.7 -> 22-26 MiB per rewrite of 12 MiB, BENCHMARKS.md issue 16).
const CHUNK_BYTES = 1024 * 1024;

const yieldTurn = () => new Promise<void>((r) => setImmediate(r));

/** Records serialized while the snapshot is written, a chunk at a time, and framed straight into it (outcome records: see TxIndex.cut). */
export interface LazyRecords {
  count: number;
  /** The record's JSON object text. */
  json(i: number): string;
}

const NO_RECORDS: LazyRecords = { count: 0, json: () => '{}' };

/** A snapshot written and installed. */
export interface WrittenSnapshot {
  bytes: number;
  /** Where each of `frames` landed, in the order given (the lazy records after them are not tracked). */
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
export async function writeSnapshot(fs: LogFs, dir: string, through: number, frames: readonly Buffer[], lazy: LazyRecords = NO_RECORDS): Promise<WrittenSnapshot> {
  const tmp = inDir(dir, snapshotTempName(through));
  const fd = await fs.open(tmp, 'w');
  const offsets: number[] = new Array<number>(frames.length);
  const chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  let used = 0;
  let size = 0;
  // Every write is awaited before the chunk is filled again.
  const flush = async () => {
    if (used === 0) return;
    await writeFully(fs, fd, chunk.subarray(0, used), size);
    size += used;
    used = 0;
    await yieldTurn();
  };
  // Returns the frame's offset in the file.
  const put = async (frame: Buffer): Promise<number> => {
    if (used + frame.length > CHUNK_BYTES) await flush();
    const at = size + used;
    if (frame.length > CHUNK_BYTES) {
      await writeFully(fs, fd, frame, size);
      size += frame.length;
    } else {
      frame.copy(chunk, used);
      used += frame.length;
    }
    return at;
  };
  try {
    const header: SnapshotHeader = { snapshot: 1, through, records: frames.length + lazy.count };
    await put(encodeFrame(header));
    for (let i = 0; i < frames.length; i++) offsets[i] = await put(frames[i]);
    for (let i = 0; i < lazy.count; i++) {
      const json = lazy.json(i);
      const length = Buffer.byteLength(json);
      const bytes = FRAME_HEADER_BYTES + length;
      if (bytes > CHUNK_BYTES) {
        await put(frameJson(json));
        continue;
      }
      if (used + bytes > CHUNK_BYTES) await flush();
      // The same frame frameJson makes, encoded in place.
      chunk.write(json, used + FRAME_HEADER_BYTES, 'utf8');
      chunk.writeUInt32BE(length, used);
      chunk.writeUInt32BE(crc32(chunk.subarray(used + FRAME_HEADER_BYTES, used + bytes)), used + 4);
      used += bytes;
    }
    await flush();
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
