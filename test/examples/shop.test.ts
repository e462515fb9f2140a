import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { generatePrismaClient } from '../../harness/prisma-generate';

/**
 * The shop example as a user runs it (`npm run shop`): one process that
 * starts three PostgreSQL clusters, the coordinator and the orders
 * (Prisma), inventory (Kysely) and payments (Drizzle) services, each its own
 * process, places orders all or nothing, prints the check and tears
 * everything down, also when interrupted.
 */
const ROOT = path.resolve(__dirname, '../..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs examples/shop/main.ts with its temp files (clusters, coordinator log) under `tmp`; `onStderr` sees its progress as it comes. */
function runShop(args: string[], tmp: string, onStderr?: (text: string, pid: number) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/shop/main.ts', ...args], { cwd: ROOT, env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr, child.pid!);
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Processes (the coordinator, the services, PostgreSQL) that inherited TMPDIR=tmp from the run, i.e. that it started. */
function processesOf(tmp: string): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`TMPDIR=${tmp}`)) found.push(`${pid}: ${fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

/**
 * Waits (10 s at most) until no process of the run is left: the reaper's
 * shell (disarmed by the teardown) notices its parent is gone within a second and exits.
 */
async function leftoverProcesses(tmp: string): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const left = processesOf(tmp);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });
}

describe('shop example', () => {
  // The runs' TMPDIR: their clusters and temp files go below it, and every process they start inherits it.
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shop-test-'));
    // PostgreSQL runs as `nobody` when the tests run as root: it must reach its data directory below.
    fs.chmodSync(tmp, 0o755);
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  /** What a run left in TMPDIR (tsx's compile cache, kept between runs, is not the run's). */
  const leftoverFiles = () => fs.readdirSync(tmp).filter((f) => !f.startsWith('tsx-'));

  it('places orders across three services and databases: stock and money add up, constraint failures abort everywhere, nothing stays prepared', async () => {
    // Little stock and money for 60 orders: goods sell out and customers run dry while orders are in flight.
    const run = await runShop(['--orders', '60', '--concurrency', '4', '--stock', '20', '--customers', '6', '--balance', '300'], tmp);
    const context = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
    expect({ code: run.code, context }).toEqual({ code: 0, context });
    expect(run.stdout.trim().split('\n').pop()).toMatch(/^check: OK: stock and money conserved, every order in all three databases or in none, nothing left prepared$/);
    expect(run.stdout).not.toMatch(/\[FAIL\]/);
    expect(run.stdout.match(/^ {2}\[ok\] {2}/gm)).toHaveLength(9);

    const committed = Number(/^ {2}committed +(\d+)$/m.exec(run.stdout)?.[1]);
    const aborted = /^ {2}aborted +(\d+): (\d+) out of stock, (\d+) insufficient funds, 0 other \((\d+) of the (\d+) made to fail\)$/m.exec(run.stdout);
    expect(aborted).not.toBeNull();
    const [total, outOfStock, insufficientFunds, madeToFailAborted, madeToFail] = aborted!.slice(1).map(Number);
    // The first order cannot fail (it costs at most 270 of its customer's 300, and 3 orders in flight with it take at most 9 of a good's 20): commits happen.
    expect(committed).toBeGreaterThan(0);
    // 5% of 60 ask for more than the stock, 5% buy the piano nobody can afford: 3 + 3 at least, each refused by its constraint.
    expect([madeToFail, madeToFailAborted]).toEqual([6, 6]);
    expect(outOfStock).toBeGreaterThanOrEqual(3);
    expect(insufficientFunds).toBeGreaterThanOrEqual(3);
    expect(committed + total).toBe(60);
    expect(run.stdout).toMatch(/^ {2}9 grand piano +250000 +1 +1 +0$/m);
    expect(run.stdout).toMatch(/^ {2}failed +0$/m);
    // Progress went to stderr, not into the report; then everything was stopped.
    expect(run.stderr).toMatch(/orders 60\/60/);
    expect(await leftoverProcesses(tmp)).toEqual([]);
    expect(leftoverFiles()).toEqual([]);
  }, 120_000);

  it('the orders service\'s Prisma work type-checks against its generated client (the repository\'s tsc leaves it out)', () => {
    generatePrismaClient(path.join(ROOT, 'examples/shop/services/orders.prisma'));
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'examples/shop/tsconfig.json')], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      throw new Error(`the shop example does not type-check:\n${(e as { stdout?: string }).stdout ?? String(e)}`);
    }
  }, 120_000);

  it('Ctrl-C with orders in flight: exits 130 and leaves no process, cluster or file behind', async () => {
    let servicePorts: number[] = [];
    let interrupted = false;
    const run = await runShop(['--orders', '100000', '--concurrency', '4'], tmp, (stderr, pid) => {
      servicePorts = [...stderr.matchAll(/(?:orders|inventory|payments) at http:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
      // Some orders done, others in flight: branches held open and prepared in the three databases.
      if (!interrupted && /orders [1-9]\d*\/100000/.test(stderr)) {
        interrupted = true;
        process.kill(pid, 'SIGINT');
      }
    });
    const context = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
    expect({ code: run.code, interrupted, context }).toEqual({ code: 130, interrupted: true, context });
    expect(run.stderr).toMatch(/SIGINT: stopping the services, the coordinator and the clusters/);
    expect(run.stdout).toBe('');
    expect(servicePorts).toHaveLength(3);
    for (const port of servicePorts) expect(await refuses(port)).toBe(true);
    expect(await leftoverProcesses(tmp)).toEqual([]);
    expect(leftoverFiles()).toEqual([]);
  }, 120_000);
});
