import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, any>;
}

/** `npm run load -- <args>` as a user runs it (through tsx), with the report's last line parsed. */
function runLoad(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TWOPC_')) env[k] = v;
    const child = spawn(process.execPath, ['--import', 'tsx', 'load/run.ts', '--progress-seconds', '0', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve({ code, stdout, stderr, json: JSON.parse(last) });
      } catch {
        reject(new Error(`no JSON line (exit ${code}):\n${stdout}\n${stderr}`));
      }
    });
  });
}

/** Processes whose command line names one of `dirs`: the run's own, and its reaper's. */
function processesIn(dirs: string[]): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (dirs.some((d) => cmdline.includes(d))) found.push(`${pid}: ${cmdline.replace(/\0/g, ' ')}`);
  }
  return found;
}

/**
 * The reaper polls its run's pid once a second, so it (and whatever it starts)
 * may still be running for a moment after the run exits: wait for every process
 * naming the directories to end, and answer those still there after `ms`.
 */
async function processesLeftIn(dirs: string[], ms: number): Promise<string[]> {
  const until = Date.now() + ms;
  for (;;) {
    const found = processesIn(dirs);
    if (found.length === 0 || Date.now() > until) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const runDirOf = (run: Run) => /run dir (\S+)/.exec(run.stderr)?.[1];

const runDirs = () => new Set(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('twopc-load-')));

// The script builds the coordinator first when its build is missing or stale (about 30 s).
jest.setTimeout(300_000);

describe('npm run load', () => {
  let out: string;
  let before: Set<string>;
  const used: string[] = [];

  beforeAll(() => {
    out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'load-test-')), 'series.jsonl');
    before = runDirs();
  });

  afterAll(() => {
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  });

  test('steady: 20 clients for 5 s report throughput, latency by status, RSS and lag, and a per-second series', async () => {
    const run = await runLoad(['--scenario', 'steady', '--clients', '20', '--seconds', '5', '--idle-seconds', '2', '--out', out]);
    used.push(runDirOf(run)!);
    // 1: a target of issue 16 not met (today's code); 2 would be a failure of the script.
    expect([0, 1]).toContain(run.code);
    const { json } = run;
    expect(json.scenario).toBe('steady');
    expect(json.options.clients).toBe(20);
    expect(json.load.txPerSec.total).toBeGreaterThan(0);
    expect(json.load.txPerSec.mean).toBeGreaterThan(0);
    expect(json.load.latency['tx committed'].count).toBeGreaterThan(0);
    expect(json.load.latency['commit 200'].p99).toBeGreaterThan(0);
    expect(json.load.latency['begin 201'].count).toBeGreaterThanOrEqual(json.load.latency['commit 200'].count);
    expect(json.load.fivexx).toBe(0);
    expect(json.load.leaks).toBe(0);
    expect(json.rssMiB.baseline).toBeGreaterThan(10);
    expect(json.rssMiB.loadMax).toBeGreaterThanOrEqual(json.rssMiB.baseline);
    expect(json.load.lag.probeMaxMs).toBeGreaterThan(0);
    expect(json.checks.map((c: { what: string }) => c.what)).toHaveLength(4);
    const series = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(series.length).toBeGreaterThanOrEqual(8);
    expect(series.some((s) => s.phase === 'load' && s.txCommitted > 0)).toBe(true);
    expect(series.every((s) => s.rssMiB === null || s.rssMiB > 0)).toBe(true);
    expect(series.some((s) => s.prom && typeof s.prom.lagP99Ms === 'number')).toBe(true);
  });

  test('dead-participant: counts connections and calls at the stub that never answers, open transactions, warnings and address leaks', async () => {
    const clients = 4;
    const run = await runLoad(['--scenario', 'dead-participant', '--clients', String(clients), '--seconds', '3', '--idle-seconds', '8', '--scrape-seconds', '1']);
    used.push(runDirOf(run)!);
    expect([0, 1]).toContain(run.code);
    const { json } = run;
    expect(json.scenario).toBe('dead-participant');
    // Every transaction the clients began reached commit, and each commit was answered (whatever the answer).
    const latency = json.load.latency as Record<string, { count: number }>;
    const commits = Object.entries(latency).filter(([k]) => k.startsWith('commit ')).reduce((n, [, v]) => n + v.count, 0);
    expect(commits).toBeGreaterThanOrEqual(clients);
    expect(json.dead.calls.prepare).toBeGreaterThanOrEqual(1);
    expect(json.dead.accepted).toBeGreaterThanOrEqual(1);
    expect(json.dead.maxOpen).toBeGreaterThanOrEqual(1);
    expect(json.dead.maxOpen).toBeLessThanOrEqual(json.dead.accepted);
    expect(typeof json.dead.rollbackPerS.load).toBe('number');
    expect(typeof json.transactions.idleEnd.live).toBe('number');
    expect(typeof json.warnings.total).toBe('number');
    // A leak is an answer carrying the stub's address; at most one per request that failed.
    expect(json.leaks).toBeLessThanOrEqual(commits + (latency['begin 201']?.count ?? 0) * 3);
    if (json.leaks > 0) expect(json.leakSample).toMatch(/127\.0\.0\.1:\d+/);
  });

  test('every process and run directory is gone afterwards', async () => {
    const left = [...runDirs()].filter((d) => !before.has(d));
    expect(left).toEqual([]);
    expect(used.filter(Boolean)).toHaveLength(2);
    expect(await processesLeftIn(used, 15_000)).toEqual([]);
  });
});
