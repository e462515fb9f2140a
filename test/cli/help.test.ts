import { runCli } from './cli-fixture';

const COMMANDS = [['list'], ['show'], ['history'], ['recover'], ['retry'], ['resolve'], ['orphans'], ['log'], ['log', 'verify'], ['log', 'compact'], ['serve']];

describe('twopc --help', () => {
  it('documents the modes and the exit codes', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    for (const command of ['serve', 'list', 'show', 'history', 'recover', 'retry', 'resolve', 'orphans', 'log']) expect(run.stdout).toMatch(new RegExp(`\\n  ${command} `));
    expect(run.stdout).toMatch(/online +--url <url> \(or TWOPC_URL\)/);
    expect(run.stdout).toMatch(/Exit codes:\n +0 +ok\n +1 +failure.*\n +2 +usage.*\n +3 +configuration.*\n +4 +not found.*\n +5 +refused.*\n +6 +log damaged.*\n +7 +unavailable.*\n(.*\n)? +8 +incomplete/);
  });

  it('every command has --help, and an unknown command or option is a usage error (exit 2)', async () => {
    const runs = await Promise.all(COMMANDS.map((c) => runCli([...c, '--help'])));
    runs.forEach((run, i) => {
      expect([COMMANDS[i].join(' '), run.code]).toEqual([COMMANDS[i].join(' '), 0]);
      expect(run.stdout).toContain(`Usage: twopc ${COMMANDS[i].join(' ')}`);
    });
    for (const run of runs.slice(0, 7).concat(runs.slice(8, 10))) expect(run.stdout).toMatch(/--url <url>[\s\S]*--json/);
    const [unknownCommand, unknownOption] = await Promise.all([runCli(['frobnicate']), runCli(['list', '--frob'])]);
    expect([unknownCommand.code, unknownOption.code]).toEqual([2, 2]);
    expect(unknownOption.stderr).toMatch(/unknown option '--frob'/);
  });
});
