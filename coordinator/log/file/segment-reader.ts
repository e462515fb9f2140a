import type { LogRecord } from '../../engine/ports/decision-log';
import { decodePayload, scanFrames, type Damage, type Frame } from './record-codec';
import { recordProblem } from '../record-shape';

/** A record read back, with where its frame starts. */
export interface ReadRecord {
  offset: number;
  record: LogRecord;
}

/** The records of a segment and the damage found in it. */
export interface DecodedFile {
  records: ReadRecord[];
  /** Damaged ranges, by offset. Without `all`, at most the first one. */
  damages: Damage[];
}

/** Decodes one frame into a record, or says why it cannot be one. */
export function frameRecord(frame: Frame): LogRecord | string {
  let value: unknown;
  try {
    value = decodePayload(frame.payload);
  } catch (e) {
    return `checksum matches but the payload is not JSON (${(e as Error).message})`;
  }
  const problem = recordProblem(value);
  return problem ? `checksum matches but the record is malformed: ${problem}` : (value as LogRecord);
}

/**
 * Reads the records of a segment. A frame whose checksum matches but whose
 * content is not a record is damage too — never a torn tail, since its write
 * completed: `toEnd` is false for it whatever follows.
 */
export function decodeSegment(buf: Buffer, all = false): DecodedFile {
  const scan = scanFrames(buf, all);
  const records: ReadRecord[] = [];
  const damages: Damage[] = [];
  for (const frame of scan.frames) {
    const r = frameRecord(frame);
    if (typeof r === 'string') {
      damages.push({ offset: frame.offset, bytes: frame.bytes, reason: r, toEnd: false });
      if (!all) return { records, damages };
      continue;
    }
    records.push({ offset: frame.offset, record: r });
  }
  damages.push(...scan.damages);
  return { records, damages };
}
