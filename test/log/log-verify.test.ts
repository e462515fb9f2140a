import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { verifyLog } from '../../coordinator/log/file/log-verify';
import { scanFrames } from '../../coordinator/log/file/record-codec';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function sampleLog(): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-verify-'));
  dirs.push(dir);
  const log = new FileDecisionLog({ dir, segmentBytes: 4096, autoCompact: false, completedRetentionMs: 0 });
  await log.open();
  for (let i = 0; i < 200; i++) {
    const txId = `tx-${i}`;
    await log.append({ type: 'begin', txId, at: 1, expiresAt: 2 });
    await log.decide({ txId, at: 1, outcome: 'commit', source: 'engine', branches: [] });
    if (i < 20) await log.append({ type: 'complete', txId, at: 1 });
    if (i === 100) await log.compact();
  }
  await log.close();
  return dir;
}

const segmentFiles = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((f) => f.startsWith('segment-'))
    .sort()
    .map((f) => path.join(dir, f));

const digest = (dir: string) =>
  fs
    .readdirSync(dir)
    .sort()
    .map((f) => `${f}:${createHash('sha256').update(fs.readFileSync(path.join(dir, f))).digest('hex')}`);

describe('verifyLog', () => {
  it('reports a healthy log as ok', async () => {
    const dir = await sampleLog();
    const report = await verifyLog(dir);
    expect(report).toMatchObject({ ok: true, opens: true, damaged: [], missing: [], leftovers: [] });
    expect(report.files[0].kind).toBe('snapshot');
    expect(report.records).toBe(report.files.reduce((n, f) => n + f.records, 0));
  });

  it('reports every damaged offset, tells torn tail from corruption, and changes nothing', async () => {
    const dir = await sampleLog();
    const segs = segmentFiles(dir);
    expect(segs.length).toBeGreaterThan(2);
    const seg = segs[0];
    const frames = scanFrames(fs.readFileSync(seg)).frames;
    const buf = fs.readFileSync(seg);
    buf[frames[1].offset + 10] ^= 1;
    buf[frames[4].offset] ^= 0x80; // the high byte of the length
    fs.writeFileSync(seg, buf);
    const last = segs[segs.length - 1];
    fs.appendFileSync(last, Buffer.from([0, 0, 0, 50, 1, 2]));
    fs.writeFileSync(path.join(dir, 'snapshot-0000000000000099.snap.tmp'), 'x');
    const before = digest(dir);

    const report = await verifyLog(dir);
    expect(report.ok).toBe(false);
    expect(report.opens).toBe(false);
    expect(report.damaged).toEqual([
      { file: seg, offset: frames[1].offset, bytes: frames[1].bytes, reason: 'checksum mismatch', verdict: 'corrupt' },
      { file: seg, offset: frames[4].offset, bytes: frames[4].bytes, reason: expect.stringMatching(/implausible payload length/), verdict: 'corrupt' },
      { file: last, offset: fs.statSync(last).size - 6, bytes: 6, reason: expect.any(String), verdict: 'torn-tail' },
    ]);
    expect(report.leftovers).toEqual([path.join(dir, 'snapshot-0000000000000099.snap.tmp')]);
    expect(digest(dir)).toEqual(before);
  });

  it('reports a missing segment', async () => {
    const dir = await sampleLog();
    const middle = segmentFiles(dir)[1];
    fs.unlinkSync(middle);
    const report = await verifyLog(dir);
    expect(report.opens).toBe(false);
    expect(report.missing).toEqual([middle]);
  });
});
