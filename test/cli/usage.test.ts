import { spawn } from 'node:child_process';
import path from 'node:path';
import { version } from '../../package.json';
import { jsonOf, runCli } from './cli-fixture';

const ROOT = path.resolve(__dirname, '../..');

/**
 * `twopc ARGS | READER` in bash, the CLI loaded as CommonJS as the installed
 * bin is (under tsx's ESM loader the exit happens to come before the stream's
 * EPIPE event and hides the crash). Returns the CLI's own exit status
 * (PIPESTATUS), what the reader printed and the CLI's stderr.
 */
function pipeInto(args: string[], reader: string): Promise<{ status: number; read: string; stderr: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const cli = [process.execPath, '--require', 'tsx/cjs', 'coordinator/cli/main.ts', ...args].map(quote).join(' ');
  // The CLI's stderr goes to fd 3, its status to stderr: stdout is only what the reader printed.
  const script = `${cli} 2>&3 | ${reader}; echo "\${PIPESTATUS[0]}" >&2`;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    let read = '';
    let status = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (read += d));
    child.stderr!.on('data', (d) => (status += d));
    child.stdio[3]!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', () => resolve({ status: Number(status.trim()), read, stderr }));
  });
}

describe('twopc usage', () => {
  it('--version prints the package version', async () => {
    const [long, short] = await Promise.all([runCli(['--version']), runCli(['-V'])]);
    expect([long.code, long.stdout]).toEqual([0, `${version}\n`]);
    expect([short.code, short.stdout]).toEqual([0, `${version}\n`]);
  });

  it('under --json, a usage error is one JSON line on stdout with its code (exit 2), as any other error', async () => {
    const runs = await Promise.all([
      runCli(['list', '--json', '--frob']),
      runCli(['show', '--json']),
      runCli(['list', '--limit', '0', '--json']),
      runCli(['list', '--state', 'nope', '--json']),
      runCli(['show', 'not-an-id', '--json']),
      runCli(['resolve', '01900000-0000-7000-8000-000000000000', '--yes', '--json']),
    ]);
    const errors = runs.map((run) => {
      expect(run.code).toBe(2);
      return jsonOf<{ error: { code: string; message: string; exitCode: number } }>(run).error;
    });
    expect(errors).toEqual([
      { code: 'invalid-input', message: "unknown option '--frob'", exitCode: 2 },
      { code: 'invalid-input', message: "missing required argument 'id'", exitCode: 2 },
      { code: 'invalid-input', message: expect.stringMatching(/^option '-n, --limit <n>' argument '0' is invalid\. must be an integer from 1 to 1000$/), exitCode: 2 },
      { code: 'invalid-input', message: expect.stringMatching(/argument 'nope' is invalid\. Allowed choices are active, /), exitCode: 2 },
      { code: 'invalid-input', message: expect.stringMatching(/^ID must be a transaction id/), exitCode: 2 },
      { code: 'invalid-input', message: 'give exactly one of --commit and --abort', exitCode: 2 },
    ]);
    // People still get commander's message and the help on stderr.
    expect(runs[0].stderr).toMatch(/^error: unknown option '--frob'\n\nUsage: twopc list/);
    // Without --json stdout stays empty.
    const plain = await runCli(['list', '--frob']);
    expect([plain.code, plain.stdout]).toEqual([2, '']);
  });

  it('a reader that stops early (`twopc --help | head -1`) ends the CLI quietly: no stack trace, its own exit code', async () => {
    const head = await pipeInto(['--help'], 'head -1');
    expect(head).toEqual({ status: 0, read: 'Usage: twopc [options] [command]\n', stderr: '' });
    // `true` reads nothing and exits at once: every write meets a closed pipe.
    const closed = await Promise.all([pipeInto(['--help'], 'true'), pipeInto(['list', '--help'], 'true'), pipeInto(['--version'], 'true')]);
    expect(closed).toEqual([0, 0, 0].map((status) => ({ status, read: '', stderr: '' })));
    // A command whose stdout was closed still ends with its own code; its message still reaches stderr.
    const usage = await pipeInto(['show', 'not-an-id', '--json'], 'true');
    expect(usage).toEqual({ status: 2, read: '', stderr: expect.stringMatching(/^twopc: ID must be a transaction id.*\[invalid-input\]\n$/) });
  });
});
