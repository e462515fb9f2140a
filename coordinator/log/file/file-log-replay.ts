import { TwopcError } from '../../engine/ports/protocol';
import type { OpenReport } from '../../engine/ports/decision-log';
import { normalizeRecord } from '../record-shape';
import type { TxIndex } from '../tx-index';
import { fsyncDir, type LogFs } from './log-fs';
import { inDir, readLayout, segmentName } from './log-layout';
import type { ActiveSegment } from './log-writer';
import { decodeSegment } from './segment-reader';
import { readSnapshot } from './snapshot';

/** What open() read back: its report, the segment the writer continues, and the files the compactor starts from. */
export interface ReplayedLog {
  report: OpenReport;
  active: ActiveSegment;
  /** The newest snapshot's sequence number (0: none) and size. */
  snapshot: { seq: number; bytes: number };
  /** Sealed segments after the snapshot: seq -> bytes. */
  sealed: Map<number, number>;
}

/** A damaged frame in a log file: `log-corrupt`, naming the file and the byte offset. */
export function logCorrupt(file: string, offset: number, reason: string, consequence = 'refusing to start (damage is never skipped)'): TwopcError {
  return new TwopcError('log-corrupt', `decision log ${file} is damaged at byte offset ${offset}: ${reason}; ${consequence}`, { file, offset, reason });
}

/**
 * Reads a locked log directory back into `index`: the newest snapshot, then
 * every segment after it. Finishes an interrupted compaction, cuts a torn
 * final record, refuses any other damage, and leaves the last segment open
 * and synced for the writer.
 */
export async function replayLog({ fs, dir, index }: { fs: LogFs; dir: string; index: TxIndex }): Promise<ReplayedLog> {
  const layout = await readLayout(fs, dir);
  // Never installed, so never relied on: the segments they would have replaced are all still here.
  for (const t of layout.temps) await fs.unlink(inDir(dir, t));
  if (layout.missingSegment !== undefined) {
    const file = inDir(dir, segmentName(layout.missingSegment));
    throw new TwopcError('log-corrupt', `decision log ${dir}: segment ${file} is missing (the segment sequence has a hole); refusing to start`, {
      file,
      offset: 0,
      reason: 'missing segment',
    });
  }
  let records = 0;
  const snapshot = { seq: 0, bytes: 0 };
  if (layout.snapshot) {
    const snap = await readSnapshot(fs, dir, layout.snapshot.file, layout.snapshot.seq);
    for (const r of snap.records) index.add(normalizeRecord(r.record), snap.through, r.offset, true);
    records += snap.records.length;
    snapshot.seq = snap.through;
    snapshot.bytes = snap.bytes;
  }
  // Deleted only now that the newest snapshot has read back whole: this
  // finishes a compaction that crashed after installing its snapshot.
  if (layout.superseded.length > 0) {
    for (const f of layout.superseded) await fs.unlink(inDir(dir, f));
    await fsyncDir(fs, dir);
  }

  let tornTail: OpenReport['tornTail'];
  let activeSize = 0;
  const sealed = new Map<number, number>();
  for (let i = 0; i < layout.segments.length; i++) {
    const seg = layout.segments[i];
    const file = inDir(dir, seg.file);
    const last = i === layout.segments.length - 1;
    const buf = await fs.readFile(file);
    const decoded = decodeSegment(buf);
    const damage = decoded.damages[0];
    if (damage) {
      if (!last || !damage.toEnd) {
        const where = !last ? 'in a sealed segment' : 'with valid records after it';
        throw logCorrupt(file, damage.offset, `${damage.reason} (${where})`);
      }
      // Only the last write can be torn, and only at the end of the last segment: cut it.
      tornTail = { file, offset: damage.offset, bytes: damage.bytes };
    }
    for (const r of decoded.records) index.add(normalizeRecord(r.record), seg.seq, r.offset);
    records += decoded.records.length;
    if (last) activeSize = tornTail ? tornTail.offset : buf.length;
    else sealed.set(seg.seq, buf.length);
  }

  let activeSeq: number;
  let fd: number;
  if (layout.segments.length > 0) {
    activeSeq = layout.segments[layout.segments.length - 1].seq;
    fd = await fs.open(inDir(dir, segmentName(activeSeq)), 'r+');
    try {
      if (tornTail) await fs.ftruncate(fd, tornTail.offset);
      // What was read back may never have been synced (the last process died
      // between write and fdatasync). Sync it before anyone acts on it: a
      // commit decision resumed by recovery must not vanish in a power loss.
      await fs.fsync(fd);
    } catch (e) {
      await fs.close(fd).catch(() => undefined);
      throw e;
    }
  } else {
    activeSeq = snapshot.seq + 1;
    fd = await fs.open(inDir(dir, segmentName(activeSeq)), 'wx');
    await fsyncDir(fs, dir);
  }
  return {
    report: { records, tornTail, unfinished: index.unfinishedCount() },
    active: { seq: activeSeq, fd, size: activeSize },
    snapshot,
    sealed,
  };
}
