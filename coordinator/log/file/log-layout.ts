import path from 'node:path';
import type { LogFs } from './log-fs';

const SEQ_DIGITS = 16;
const NAME = /^(segment|snapshot)-(\d{16})\.(log|snap)(\.tmp)?$/;

/** The lock file's name inside the log directory. */
export const LOCK_FILE = 'LOCK';

/** `segment-<16-digit seq>.log`: names sort in sequence order. */
export function segmentName(seq: number): string {
  return `segment-${String(seq).padStart(SEQ_DIGITS, '0')}.log`;
}

/** A snapshot named N holds every kept record of segments 1..N. */
export function snapshotName(seq: number): string {
  return `snapshot-${String(seq).padStart(SEQ_DIGITS, '0')}.snap`;
}

/** Where a snapshot is written before it is renamed into place. */
export function snapshotTempName(seq: number): string {
  return `${snapshotName(seq)}.tmp`;
}

/** A segment or snapshot file and its sequence number. */
export interface SeqFile {
  seq: number;
  file: string;
}

/** What a log directory holds, and what open() should make of it. */
export interface LogLayout {
  /** The newest snapshot: the base the segments after it are replayed on. */
  snapshot?: SeqFile;
  /** Segments after the snapshot, ascending: these are replayed. */
  segments: SeqFile[];
  /** Older snapshots and segments the newest snapshot covers: leftovers of a compaction interrupted after its snapshot was installed. */
  superseded: string[];
  /** Snapshot files never renamed into place: a compaction interrupted before its snapshot was installed. */
  temps: string[];
  /** Set when a segment that must exist is missing (the sequence after the snapshot has a hole). */
  missingSegment?: number;
}

/**
 * Classifies the files of a log directory. Reads nothing but the listing, and
 * changes nothing: open() acts on the result, `log verify` only reports it.
 */
export async function readLayout(lfs: LogFs, dir: string): Promise<LogLayout> {
  const segments: SeqFile[] = [];
  const snapshots: SeqFile[] = [];
  const temps: string[] = [];
  for (const name of await lfs.readdir(dir)) {
    const m = NAME.exec(name);
    if (!m) continue;
    const kind = m[1];
    const ext = m[3];
    if ((kind === 'segment') !== (ext === 'log')) continue;
    if (m[4]) {
      temps.push(name);
      continue;
    }
    (kind === 'segment' ? segments : snapshots).push({ seq: Number(m[2]), file: name });
  }
  segments.sort((a, b) => a.seq - b.seq);
  snapshots.sort((a, b) => a.seq - b.seq);
  const snapshot = snapshots.at(-1);
  const base = snapshot?.seq ?? 0;
  const superseded = [...snapshots.slice(0, -1), ...segments.filter((s) => s.seq <= base)].map((s) => s.file);
  const live = segments.filter((s) => s.seq > base);
  let missingSegment: number | undefined;
  // A snapshot through N is only ever written while segment N+1 is the active
  // one, and segments are created before anything in them is acknowledged, so
  // after the snapshot the sequence must start at N+1 with no hole.
  if (snapshot || live.length > 0) {
    let expected = base + 1;
    for (const s of live) {
      if (s.seq !== expected) break;
      expected++;
    }
    if (expected !== base + 1 + live.length || live.length === 0) missingSegment = expected;
  }
  return { snapshot, segments: live, superseded, temps, missingSegment };
}

/** The path of `file` in the log directory. */
export function inDir(dir: string, file: string): string {
  return path.join(dir, file);
}
