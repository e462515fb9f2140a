import { TwopcError } from '../../engine/ports/protocol';
import { crc32 } from './crc32';

/** `[u32 payload length][u32 CRC-32 of payload]`, both big-endian, before every payload. */
export const FRAME_HEADER_BYTES = 8;

/** Largest payload a frame may carry; a larger length field is damage, not a record. */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/**
 * Frames `value` as `[length][crc][JSON payload]`. Payloads are always JSON
 * objects, which the scanner relies on: every byte of a JSON text is >= 0x20,
 * so no run of payload bytes can pass for a plausible length field, and a
 * resync after damage cannot lock onto a frame boundary inside a payload.
 */
export function encodeFrame(value: object): Buffer {
  return frameJson(JSON.stringify(value));
}

/** Frames an already serialized JSON object (the caller keeps the string, e.g. to parse back exactly what goes to disk). */
export function frameJson(json: string): Buffer {
  const length = Buffer.byteLength(json);
  if (length > MAX_PAYLOAD_BYTES) {
    throw new TwopcError('invalid-input', `record is ${length} bytes encoded; the file log takes at most ${MAX_PAYLOAD_BYTES}`, { field: 'record', bytes: length });
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  frame.write(json, FRAME_HEADER_BYTES, 'utf8');
  frame.writeUInt32BE(length, 0);
  frame.writeUInt32BE(crc32(frame.subarray(FRAME_HEADER_BYTES)), 4);
  return frame;
}

/** A frame whose checksum matched. */
export interface Frame {
  /** Byte offset of the frame header in its file. */
  offset: number;
  /** Header plus payload. */
  bytes: number;
  payload: Buffer;
}

/** A damaged byte range: from `offset` up to the next valid frame, or to the end of the file. */
export interface Damage {
  offset: number;
  bytes: number;
  reason: string;
  /** True when no valid frame follows the damage: it runs to the end of the file (a torn tail, if the file is the last segment). */
  toEnd: boolean;
}

/** Every valid frame of a file, and every damaged range found between them. */
export interface ScanResult {
  frames: Frame[];
  damages: Damage[];
}

/** Total frame length at `offset`, or the reason there is no valid frame there. */
function checkFrame(buf: Buffer, offset: number): number | string {
  if (offset + FRAME_HEADER_BYTES > buf.length) return 'incomplete frame header';
  const length = buf.readUInt32BE(offset);
  if (length === 0 || length > MAX_PAYLOAD_BYTES) return `implausible payload length ${length}`;
  const end = offset + FRAME_HEADER_BYTES + length;
  if (end > buf.length) return `payload of ${length} bytes runs past the end of the file`;
  const start = offset + FRAME_HEADER_BYTES;
  // Cheap pre-check before the CRC: it keeps resync scans over megabytes linear.
  if (buf[start] !== OPEN_BRACE || buf[end - 1] !== CLOSE_BRACE) return 'checksum mismatch';
  if (crc32(buf.subarray(start, end)) !== buf.readUInt32BE(offset + 4)) return 'checksum mismatch';
  return FRAME_HEADER_BYTES + length;
}

/** The whole frame at `offset` if its checksum matches, else why not. */
export function frameAt(buf: Buffer, offset: number): Buffer | string {
  const checked = checkFrame(buf, offset);
  return typeof checked === 'number' ? buf.subarray(offset, offset + checked) : checked;
}

/** The offset of the next valid frame strictly after `from`, or -1. */
function resync(buf: Buffer, from: number): number {
  for (let o = from + 1; o + FRAME_HEADER_BYTES < buf.length; o++) {
    if (typeof checkFrame(buf, o) === 'number') return o;
  }
  return -1;
}

/**
 * Splits a file into checksummed frames. Damage is never skipped silently: it
 * is returned with its offset, and `toEnd` tells a torn tail (nothing valid
 * after it) from damage in the middle. With `all` false the scan stops at the
 * first damage (what open() needs); with `all` true it resyncs and reports
 * every damaged range (what `log verify` needs).
 */
export function scanFrames(buf: Buffer, all = false): ScanResult {
  const frames: Frame[] = [];
  const damages: Damage[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const checked = checkFrame(buf, offset);
    if (typeof checked === 'number') {
      frames.push({ offset, bytes: checked, payload: buf.subarray(offset + FRAME_HEADER_BYTES, offset + checked) });
      offset += checked;
      continue;
    }
    const next = resync(buf, offset);
    const end = next === -1 ? buf.length : next;
    damages.push({ offset, bytes: end - offset, reason: checked, toEnd: next === -1 });
    if (!all || next === -1) break;
    offset = next;
  }
  return { frames, damages };
}

/** Parses a frame's payload; throws on malformed JSON (the caller turns that into a damage report). */
export function decodePayload(payload: Buffer): unknown {
  return JSON.parse(payload.toString('utf8'));
}
