import { PassThrough } from 'node:stream';
import { CliError } from '../../coordinator/cli/exit-codes';
import { confirm } from '../../coordinator/cli/confirm';
import { Progress } from '../../coordinator/cli/progress';
import { renderTable } from '../../coordinator/cli/table';

function terminal(answer: string | undefined): { input: PassThrough & { isTTY?: boolean }; output: PassThrough; shown: () => string } {
  const input = Object.assign(new PassThrough(), { isTTY: true });
  const output = new PassThrough();
  let shown = '';
  output.on('data', (d) => (shown += d));
  if (answer !== undefined) setImmediate(() => input.write(`${answer}\n`));
  return { input, output, shown: () => shown };
}

describe('confirmation of an operator decision', () => {
  it('asks on a terminal and goes on only for y or yes', async () => {
    const yes = terminal('yes');
    await expect(confirm('Record COMMIT?', { yes: false, streams: yes })).resolves.toBeUndefined();
    expect(yes.shown()).toContain('Record COMMIT? [y/N] ');
    for (const answer of ['', 'n', 'commit']) {
      await expect(confirm('Record COMMIT?', { yes: false, streams: terminal(answer) })).rejects.toMatchObject({ exitCode: 5, message: 'not confirmed: nothing was recorded' });
    }
  });

  it('refuses without a terminal unless --yes, and never reads what is piped in', async () => {
    const piped = Object.assign(new PassThrough(), { isTTY: false });
    piped.write('y\n');
    await expect(confirm('Record ABORT?', { yes: false, streams: { input: piped, output: new PassThrough() } })).rejects.toBeInstanceOf(CliError);
    await expect(confirm('Record ABORT?', { yes: true, streams: { input: piped, output: new PassThrough() } })).resolves.toBeUndefined();
  });
});

describe('output helpers', () => {
  it('tables pad every column but the last, one line per row', () => {
    const text = renderTable([{ heading: 'ID', cell: (r: { id: string; s: string }) => r.id }, { heading: 'STATE', cell: (r) => r.s }], [{ id: 'a', s: 'committed' }, { id: 'bbbb', s: 'multi\nline' }]);
    expect(text).toBe('ID    STATE\na     committed\nbbbb  multi line\n');
  });

  it('progress redraws one line on a terminal, and is throttled elsewhere', () => {
    let t = 0;
    const lines: string[] = [];
    const progress = new Progress({ write: (s: string) => lines.push(s), isTTY: false }, { now: () => t, everyMs: 1000 });
    progress.update('1');
    t = 500;
    progress.update('2');
    t = 1500;
    progress.update('3');
    progress.done('done');
    expect(lines).toEqual(['1\n', '3\n', 'done\n']);
    const tty: string[] = [];
    const redraw = new Progress({ write: (s: string) => tty.push(s), isTTY: true });
    redraw.update('x');
    redraw.done('y');
    expect(tty).toEqual(['\r\x1b[2Kx', '\r\x1b[2Ky', '\n']);
    const quiet: string[] = [];
    new Progress({ write: (s: string) => quiet.push(s) }, { quiet: true }).done('z');
    expect(quiet).toEqual([]);
  });
});
