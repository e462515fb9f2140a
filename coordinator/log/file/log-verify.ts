import path from 'node:path';
import { nodeLogFs, type LogFs } from './log-fs';
import { inDir, readLayout, segmentName } from './log-layout';
import { decodePayload, scanFrames } from './record-codec';
import { decodeSegment, frameRecord } from './segment-reader';
import type { SnapshotHeader } from './snapshot';

/** One file `verifyLog` read. */
export interface VerifiedFile {
  file: string;
  kind: 'snapshot' | 'segment';
  bytes: number;
  /** Records with a matching checksum and a well-formed body. */
  records: number;
}

/** A damaged byte range, and what open() would make of it. */
export interface DamagedRange {
  file: string;
  offset: number;
  bytes: number;
  reason: string;
  /** `torn-tail`: open() cuts it off and reports it. `corrupt`: open() refuses to start. */
  verdict: 'torn-tail' | 'corrupt';
}

/** The result of a read-only check of a log directory. */
export interface VerifyReport {
  dir: string;
  /** Nothing damaged, nothing missing. */
  ok: boolean;
  /** open() would succeed (at most a torn tail, which it would cut). */
  opens: boolean;
  records: number;
  files: VerifiedFile[];
  /** Every damaged range, in file and offset order (each resynced past, so one bad record does not hide the next). */
  damaged: DamagedRange[];
  /** Segments the sequence needs but the directory lacks. */
  missing: string[];
  /** Files open() would delete: superseded by a newer snapshot, or snapshot temp files never installed. */
  leftovers: string[];
}

/**
 * Checks every record of a log directory without changing anything: no lock
 * is taken, nothing is truncated or deleted. Meant for `twopc log verify`. On
 * a log that is open elsewhere, a write in flight at the end of the last
 * segment can show up as a torn tail.
 */
export async function verifyLog(dir: string, options: { fs?: LogFs } = {}): Promise<VerifyReport> {
  const fs = options.fs ?? nodeLogFs();
  const abs = path.resolve(dir);
  const layout = await readLayout(fs, abs);
  const files: VerifiedFile[] = [];
  const damaged: DamagedRange[] = [];
  let records = 0;

  if (layout.snapshot) {
    const file = inDir(abs, layout.snapshot.file);
    const buf = await fs.readFile(file);
    const scan = scanFrames(buf, true);
    let n = 0;
    let promised: number | undefined;
    scan.frames.forEach((f, i) => {
      if (i === 0 && f.offset === 0) {
        let header: Partial<SnapshotHeader> | undefined;
        try {
          header = decodePayload(f.payload) as Partial<SnapshotHeader>;
        } catch {
          header = undefined;
        }
        if (header?.snapshot !== 1 || header.through !== layout.snapshot!.seq) {
          damaged.push({ file, offset: 0, bytes: f.bytes, reason: 'missing or malformed snapshot header', verdict: 'corrupt' });
        } else {
          promised = header.records;
        }
        return;
      }
      const r = frameRecord(f);
      if (typeof r === 'string') damaged.push({ file, offset: f.offset, bytes: f.bytes, reason: r, verdict: 'corrupt' });
      else n++;
    });
    for (const d of scan.damages) damaged.push({ file, offset: d.offset, bytes: d.bytes, reason: d.reason, verdict: 'corrupt' });
    if (promised !== undefined && scan.damages.length === 0 && promised !== scan.frames.length - 1) {
      damaged.push({ file, offset: buf.length, bytes: 0, reason: `header promises ${promised} records, the file holds ${scan.frames.length - 1}`, verdict: 'corrupt' });
    }
    files.push({ file, kind: 'snapshot', bytes: buf.length, records: n });
    records += n;
  }

  for (let i = 0; i < layout.segments.length; i++) {
    const file = inDir(abs, layout.segments[i].file);
    const last = i === layout.segments.length - 1;
    const buf = await fs.readFile(file);
    const decoded = decodeSegment(buf, true);
    for (const d of decoded.damages) {
      // Exactly what open() accepts: a single damage, at the end of the last segment, with nothing valid after it.
      const torn = last && d.toEnd && decoded.damages.length === 1;
      damaged.push({ file, offset: d.offset, bytes: d.bytes, reason: d.reason, verdict: torn ? 'torn-tail' : 'corrupt' });
    }
    files.push({ file, kind: 'segment', bytes: buf.length, records: decoded.records.length });
    records += decoded.records.length;
  }
  damaged.sort((a, b) => (a.file === b.file ? a.offset - b.offset : a.file < b.file ? -1 : 1));

  const missing = layout.missingSegment === undefined ? [] : [inDir(abs, segmentName(layout.missingSegment))];
  const leftovers = [...layout.superseded, ...layout.temps].map((f) => inDir(abs, f));
  return {
    dir: abs,
    ok: damaged.length === 0 && missing.length === 0,
    opens: missing.length === 0 && damaged.every((d) => d.verdict === 'torn-tail'),
    records,
    files,
    damaged,
    missing,
    leftovers,
  };
}
