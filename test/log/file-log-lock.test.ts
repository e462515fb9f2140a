import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isTwopcError, type TwopcError } from '../../coordinator/engine/ports/protocol';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';

const MODULE = path.resolve(__dirname, '../../coordinator/log/file/file-decision-log.ts');

// A second process that opens the log at LOG_DIR, writes one commit decision,
// says so on stdout, and holds the lock until its stdin closes.
const HOLDER = `
const { FileDecisionLog } = require(${JSON.stringify(MODULE)});
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const log = new FileDecisionLog({ dir: process.env.LOG_DIR });
log.open().then(async (report) => {
  const txId = 'tx-child-' + process.pid;
  await log.decide({ txId, at: Date.now(), outcome: 'commit', source: 'engine', branches: [] });
  say({ event: 'open', pid: process.pid, txId, report });
  process.stdin.on('end', () => log.close().then(() => process.exit(0)));
  process.stdin.resume();
}, (e) => { say({ event: 'error', code: e.code, message: e.message, details: e.details }); process.exit(3); });
`;

interface ChildLine {
  event: 'open' | 'error';
  pid?: number;
  txId?: string;
  code?: string;
  message?: string;
  details?: { pid?: number };
}

interface Holder {
  child: ChildProcessWithoutNullStreams;
  line: Promise<ChildLine>;
  exited: Promise<number | null>;
}

function startHolder(dir: string): Holder {
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', HOLDER], {
    cwd: path.resolve(__dirname, '../..'),
    env: { ...process.env, LOG_DIR: dir },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const line = new Promise<ChildLine>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl !== -1) resolve(JSON.parse(out.slice(0, nl)) as ChildLine);
    });
    child.on('exit', (code) => reject(new Error(`holder exited (${code}) before saying anything: ${err}`)));
  });
  line.catch(() => undefined);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, line, exited };
}

/** The pid of a process that has exited (so kill(pid, 0) says ESRCH). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

const dirs: string[] = [];
const children: ChildProcessWithoutNullStreams[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-lock-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as TwopcError,
  );

function writeStaleLock(dir: string, pid: number, host = os.hostname()): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'LOCK'), JSON.stringify({ pid, host, processStart: 1, since: 'earlier' }) + '\n');
}

describe('FileDecisionLog lock', () => {
  it('refuses a second open in the same process, naming the directory and the pid', async () => {
    const dir = tempDir();
    const a = new FileDecisionLog({ dir });
    await a.open();
    const b = new FileDecisionLog({ dir });
    const error = await errorOf(b.open());
    expect(isTwopcError(error, 'log-locked')).toBe(true);
    expect(error!.message).toContain(dir);
    expect(error!.message).toContain(`pid ${process.pid}`);
    expect(error!.details.pid).toBe(process.pid);
    await a.close();
    const c = new FileDecisionLog({ dir });
    await c.open();
    await c.close();
  });

  it('refuses while another process holds the log, and takes it over once that process is SIGKILLed', async () => {
    const dir = tempDir();
    const holder = startHolder(dir);
    children.push(holder.child);
    const said = await holder.line;
    expect(said.event).toBe('open');
    const error = await errorOf(new FileDecisionLog({ dir }).open());
    expect(error?.code).toBe('log-locked');
    expect(error!.details.pid).toBe(holder.child.pid);
    expect(error!.message).toContain(`pid ${holder.child.pid}`);
    expect(error!.message).toContain(dir);

    holder.child.kill('SIGKILL');
    await holder.exited;
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8')).pid).toBe(holder.child.pid);
    const log = new FileDecisionLog({ dir });
    await log.open();
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8')).pid).toBe(process.pid);
    expect((await log.get(said.txId!))!.decision!.outcome).toBe('commit');
    await log.close();
  });

  it('makes another process fail with log-locked naming this one', async () => {
    const dir = tempDir();
    const log = new FileDecisionLog({ dir });
    await log.open();
    const other = startHolder(dir);
    children.push(other.child);
    const said = await other.line;
    expect(said).toMatchObject({ event: 'error', code: 'log-locked', details: { pid: process.pid } });
    expect(said.message).toContain(dir);
    expect(await other.exited).toBe(3);
    await log.close();
  });

  it('lets exactly one of several racing processes take over a stale lock', async () => {
    const dir = tempDir();
    writeStaleLock(dir, deadPid());
    const racers = Array.from({ length: 3 }, () => startHolder(dir));
    children.push(...racers.map((r) => r.child));
    const lines = await Promise.all(racers.map((r) => r.line));
    const winners = lines.filter((l) => l.event === 'open');
    expect(winners).toHaveLength(1);
    for (const l of lines.filter((x) => x.event === 'error')) expect(l).toMatchObject({ code: 'log-locked', details: { pid: winners[0].pid } });
    for (const r of racers) r.child.stdin.end();
    await Promise.all(racers.map((r) => r.exited));
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('LOCK'))).toEqual([]);
  });

  it('lets exactly one of several racing opens in one process take over a stale lock', async () => {
    const dir = tempDir();
    writeStaleLock(dir, deadPid());
    const logs = Array.from({ length: 6 }, () => new FileDecisionLog({ dir }));
    const results = await Promise.allSettled(logs.map((l) => l.open()));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as TwopcError).code).toBe('log-locked');
    for (const l of logs) await l.close();
  });

  it('is not blocked by the takeover marker of a taker that died', async () => {
    const dir = tempDir();
    writeStaleLock(dir, deadPid());
    const ino = fs.statSync(path.join(dir, 'LOCK')).ino;
    fs.writeFileSync(path.join(dir, `LOCK.takeover-${ino}-0`), JSON.stringify({ pid: deadPid(), host: os.hostname(), processStart: 2, since: 'earlier' }));
    const log = new FileDecisionLog({ dir });
    await log.open();
    await log.close();
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('LOCK'))).toEqual([]);
  });

  it('does not take over a lock held on another host, or one it cannot read', async () => {
    const dir = tempDir();
    writeStaleLock(dir, deadPid(), 'some-other-host');
    const error = await errorOf(new FileDecisionLog({ dir }).open());
    expect(error?.code).toBe('log-locked');
    expect(error!.message).toContain('some-other-host');

    fs.writeFileSync(path.join(dir, 'LOCK'), 'garbage');
    const unreadable = await errorOf(new FileDecisionLog({ dir }).open());
    expect(unreadable?.code).toBe('log-locked');
    expect(unreadable!.message).toMatch(/cannot be read/);
    expect(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8')).toBe('garbage');
  });

  it('takes over a lock left by an earlier process that had this same pid', async () => {
    // A container's coordinator is pid 1 after every restart.
    const dir = tempDir();
    writeStaleLock(dir, process.pid);
    const log = new FileDecisionLog({ dir });
    await log.open();
    await log.close();
  });
});
