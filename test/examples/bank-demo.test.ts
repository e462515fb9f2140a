import { spawn } from 'node:child_process';
import path from 'node:path';

/**
 * The bank-transfer demo as a user runs it: one process that starts two
 * PostgreSQL clusters, the coordinator and two account services (each its own
 * process), makes the transfers, prints the check and tears everything down.
 */

const ROOT = path.resolve(__dirname, '../..');

function runDemoProcess(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/bank-transfer/main.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('bank-transfer demo', () => {
  it('runs transfers across two services and databases; money is conserved, overdrafts abort, nothing stays prepared', async () => {
    const run = await runDemoProcess(['--transfers', '40', '--concurrency', '4']);
    const context = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
    expect({ code: run.code, context }).toEqual({ code: 0, context });
    expect(run.stdout).toMatch(/\[ok\]\s+money conserved: alpha \d+ \+ beta \d+ = 20000 \(opened with 20000\)/);
    expect(run.stdout).toMatch(/\[ok\]\s+no prepared transaction left: 0 left/);
    // 5% of 40: two overdrafts, both refused by the debited bank and aborted everywhere.
    expect(run.stdout).toMatch(/aborted\s+\d+ \(2 planned overdrafts/);
    expect(run.stdout.trim().split('\n').pop()).toMatch(/^check: OK/);
    // Progress went to stderr, not into the report.
    expect(run.stderr).toMatch(/transfers 40\/40/);
  }, 90_000);
});
