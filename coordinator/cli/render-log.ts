import type { CompactReport } from '../engine/ports/decision-log';
import type { VerifyReport } from '../log/file/log-verify';
import { renderFields } from './table';

/** `twopc log verify`: every damaged range as `file:offset`, and what a start would do about it. */
export function renderVerify(r: VerifyReport): string {
  let text = renderFields([
    ['log', r.dir],
    ['files', String(r.files.length)],
    ['records', String(r.records)],
  ]);
  for (const d of r.damaged) {
    const verdict = d.verdict === 'torn-tail' ? 'torn final record: a start cuts it off' : 'CORRUPT: a start refuses';
    text += `damaged: ${d.file}:${d.offset} (${d.bytes} bytes at byte offset ${d.offset}): ${d.reason} [${verdict}]\n`;
  }
  for (const m of r.missing) text += `missing: ${m} (a hole in the segment sequence: a start refuses)\n`;
  for (const l of r.leftovers) text += `leftover: ${l} (a start deletes it)\n`;
  if (r.ok) text += 'ok: every record reads back with a matching checksum\n';
  else if (r.opens) text += 'ok apart from a torn final record (the last write of a process that died): a start cuts it off\n';
  else text += 'DAMAGED: the coordinator will refuse to start on this log; restore it from a backup or repair it by hand\n';
  return text;
}

/** `twopc log compact`: what was forgotten and the space reclaimed. */
export function renderCompact(r: CompactReport): string {
  return renderFields([
    ['forgotten (completed, past retention)', String(r.forgotten)],
    ['kept', String(r.kept)],
    ['bytes before', String(r.bytesBefore)],
    ['bytes after', String(r.bytesAfter)],
  ]);
}
