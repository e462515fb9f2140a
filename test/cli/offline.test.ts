import fs from 'node:fs';
import path from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { buildGid } from '../../participant-sdk/src/gid';
import { HAVE_SCRIPT, jsonOf, Ledgers, runCli, runCliOnTerminal, strand, tempDir, writeConfig } from './cli-fixture';

/**
 * `twopc` operator commands offline: on the log of a stopped coordinator and
 * its participant databases (real PostgreSQL), each command a real process.
 * The work to operate on is left by an in-process coordinator killed at a
 * crash point; each scenario has its own log and GID prefix.
 */

const PREFIXES = ['offa', 'offb', 'offc', 'offh', 'offt', 'offv'];

describe('twopc operator commands, offline', () => {
  let ledgers: Ledgers;
  let dir: string;

  beforeAll(async () => {
    ledgers = await Ledgers.start('cli-offline');
    dir = tempDir('offline');
  });

  afterAll(async () => {
    await ledgers?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    for (const prefix of PREFIXES) expect(await ledgers.prepared(prefix)).toEqual([]);
  });

  it('list, show and history of a stranded commit; resolve refuses to contradict it; retry finishes it', async () => {
    const { file, dataDir } = writeConfig(dir, ledgers, 'offa');
    const begun = await strand(ledgers, dataDir, 'offa', { crashAt: 'after-commit-decision:2' });
    const id = begun[begun.length - 1];
    const c = ['--config', file];

    const list = await runCli(['list', ...c, '--json']);
    expect(list.code).toBe(0);
    // The first transfer completed (completed transactions are not listed); the second was stranded after its decision.
    expect(jsonOf(list).transactions.map((t: { id: string; state: string }) => [t.id, t.state])).toEqual([[id, 'committed']]);

    const inDoubt = await runCli(['list', ...c, '--state', 'in-doubt']);
    expect(inDoubt.code).toBe(0);
    expect(inDoubt.stdout).toMatch(new RegExp(`^ID +STATE +DECISION +CREATED +BRANCHES +HAZARDS\\n${id} +committed +commit +\\S+ +2 +-\\n$`));

    const show = await runCli(['show', id, ...c, '--json']);
    expect(show.code).toBe(0);
    expect(jsonOf(show)).toMatchObject({
      id,
      state: 'committed',
      decision: 'commit',
      hazards: [],
      branches: [
        { branchId: 1, participant: 'ledger_a', state: 'prepared', gid: buildGid('offa', id, 1) },
        { branchId: 2, participant: 'ledger_b', state: 'prepared', gid: buildGid('offa', id, 2) },
      ],
    });

    const history = await runCli(['history', id, ...c, '--json']);
    expect(history.code).toBe(0);
    const events = jsonOf(history).events as Array<{ type: string; at: string; source?: string }>;
    expect(events.map((e) => e.type)).toEqual(['begin', 'enlist', 'enlist', 'decision']);
    expect(events.every((e) => !Number.isNaN(Date.parse(e.at)) && e.at.endsWith('Z'))).toBe(true);
    expect(events[3].source).toBe('engine');

    // Without a terminal and without --yes nothing is asked and nothing is recorded.
    const unconfirmed = await runCli(['resolve', id, '--abort', ...c]);
    expect(unconfirmed.code).toBe(5);
    expect(unconfirmed.stderr).toMatch(/stdin is not a terminal; pass --yes/);
    const contradicting = await runCli(['resolve', id, '--abort', '--yes', ...c]);
    expect(contradicting.code).toBe(5);
    expect(contradicting.stderr).toMatch(/already decided commit; an operator cannot record abort against it \[state-conflict\]/);

    const retry = await runCli(['retry', id, ...c, '--json']);
    expect(retry.code).toBe(0);
    expect(jsonOf(retry)).toEqual({ txId: id, retried: true, decision: 'commit', completed: true, hazards: 0 });
    expect(await ledgers.transferIds('ledger_a')).toContain(id);
    expect(await ledgers.transferIds('ledger_b')).toContain(id);

    const after = await runCli(['history', id, ...c]);
    // The operator's actions are in the history, with who (the local user, offline) and when: the refused one too.
    expect(after.stdout).toMatch(
      /COMMIT decided by engine, 2 branch\(es\) to finish\n.*action +operator cli:\S+@\S+ asked: resolve-abort\n.*action +operator cli:\S+@\S+ asked: retry\n.*complete +every branch acknowledged phase 2\n$/,
    );
    const nothing = await runCli(['retry', id, ...c]);
    expect([nothing.code, nothing.stdout]).toEqual([0, `${id}: already completed; nothing to retry\n`]);
  });

  it('bad ids, unknown ids, bad options and bad configuration have their own exit codes', async () => {
    const { file, dataDir } = writeConfig(dir, ledgers, 'offa');
    fs.mkdirSync(dataDir, { recursive: true });
    const bad = path.join(dir, 'bad-config.json');
    fs.writeFileSync(bad, JSON.stringify({ dataDir, nope: 1 }));
    // None of these opens the log (refused before), so they may run at once.
    const runs = await Promise.all([
      runCli(['show', 'not-an-id', '--config', file]),
      runCli(['list', '--limit', '0', '--config', file]),
      runCli(['resolve', uuidv7(), '--commit', '--abort', '--yes', '--config', file]),
      runCli(['list', '--config', bad]),
      runCli(['list', '--data-dir', path.join(dir, 'no-such-log')]),
      runCli(['list', '--url', 'http://127.0.0.1:7070', '--data-dir', dataDir]),
    ]);
    expect(runs.map((r) => r.code)).toEqual([2, 2, 2, 3, 3, 2]);
    expect(runs[0].stderr).toMatch(/ID must be a transaction id/);
    expect(runs[1].stderr).toMatch(/--limit <n>' argument '0' is invalid. must be an integer from 1 to 1000/);
    expect(runs[2].stderr).toMatch(/exactly one of --commit and --abort/);
    expect(runs[3].stderr).toMatch(/unknown setting nope \[invalid-config\]/);
    expect(runs[4].stderr).toMatch(/no decision log at .*no-such-log/);
    expect(runs[5].stderr).toMatch(/give one or the other/);

    const unknown = await runCli(['show', uuidv7(), '--config', file]);
    expect([unknown.code, unknown.stderr]).toEqual([4, expect.stringMatching(/no transaction .* \[not-found\]/)]);
    // --json: the error is one JSON line on stdout too.
    const json = await runCli(['show', uuidv7(), '--config', file, '--json']);
    expect(json.code).toBe(4);
    expect(jsonOf(json)).toEqual({ error: { code: 'not-found', message: expect.stringMatching(/^no transaction /), exitCode: 4 } });
  });

  it('resolve --commit decides a stranded undecided transaction through the register, and then refuses abort', async () => {
    const { file, dataDir } = writeConfig(dir, ledgers, 'offb');
    const begun = await strand(ledgers, dataDir, 'offb', { crashAt: 'after-prepare-all:1' });
    const id = begun[0];
    expect(await ledgers.prepared('offb')).toEqual([buildGid('offb', id, 1), buildGid('offb', id, 2)]);

    const resolve = await runCli(['resolve', id, '--commit', '--yes', '--config', file, '--json']);
    expect(resolve.code).toBe(0);
    expect(jsonOf(resolve)).toEqual({ txId: id, decision: 'commit', alreadyDecided: false, completed: true, hazards: 0 });
    expect(await ledgers.transferIds('ledger_a')).toContain(id);
    expect(await ledgers.transferIds('ledger_b')).toContain(id);

    const history = jsonOf(await runCli(['history', id, '--config', file, '--json']));
    expect(history.events.find((e: { type: string }) => e.type === 'decision')).toMatchObject({ outcome: 'commit', source: 'admin' });
    const again = await runCli(['resolve', id, '--abort', '--yes', '--config', file]);
    expect(again.code).toBe(5);
    expect(again.stderr).toMatch(/already decided commit/);
  });

  (HAVE_SCRIPT ? it : it.skip)('resolve asks for confirmation on a terminal, and records nothing unless the answer is yes', async () => {
    const { file, dataDir } = writeConfig(dir, ledgers, 'offt');
    const [id] = await strand(ledgers, dataDir, 'offt', { crashAt: 'after-prepare-all:1' });

    const declined = await runCliOnTerminal(['resolve', id, '--abort', '--config', file], 'n');
    expect(declined.code).toBe(5);
    expect(declined.output).toMatch(new RegExp(`Record the operator decision ABORT for transaction ${id} \\(it is active, decision none, 2 branch\\(es\\)\\)\\? This is final. \\[y/N\\]`));
    expect(declined.output).toMatch(/not confirmed: nothing was recorded/);
    expect(await ledgers.prepared('offt')).toHaveLength(2);

    const confirmed = await runCliOnTerminal(['resolve', id, '--abort', '--config', file], 'y');
    expect(confirmed.code).toBe(0);
    expect(confirmed.output).toMatch(new RegExp(`${id}: decided ABORT \\(operator decision recorded\\); every branch acknowledged`));
    expect(await ledgers.transferIds('ledger_a')).not.toContain(id);
  });

  it('recover finishes stranded work, with progress on stderr', async () => {
    const { file, dataDir } = writeConfig(dir, ledgers, 'offc');
    const begun = await strand(ledgers, dataDir, 'offc', { crashAt: 'after-commit-one:2' });
    const id = begun[begun.length - 1];

    const recover = await runCli(['recover', '--config', file, '--json']);
    expect(recover.code).toBe(0);
    expect(jsonOf(recover)).toMatchObject({ unfinished: 1, resumedCommit: 1, completed: 1, pending: 0, leftForLater: 0 });
    expect(recover.stderr).toMatch(/recovery: 1\/1 decided, 1 finished in [\d.]+ s/);
    expect(await ledgers.transferIds('ledger_b')).toContain(id);

    const text = await runCli(['recover', '--config', file, '--quiet']);
    expect([text.code, text.stderr]).toEqual([0, '']);
    expect(text.stdout).toMatch(/unfinished in the log: +0\n/);
  });

  it('orphans finds a prepared branch made by hand, and --rollback rolls it back', async () => {
    const { file, dataDir } = writeConfig(dir, ledgers, 'offa');
    fs.mkdirSync(dataDir, { recursive: true });
    const txId = uuidv7();
    const gid = buildGid('offa', txId, 1);
    await ledgers.prepareByHand('ledger_a', gid, `stray-${txId}`);
    // Another prefix is not ours: never listed, never touched.
    const foreign = buildGid('other', uuidv7(), 1);
    await ledgers.prepareByHand('ledger_b', foreign, `foreign-${txId}`);
    try {
      const scan = await runCli(['orphans', '--config', file, '--json']);
      expect(scan.code).toBe(0);
      expect(jsonOf(scan)).toEqual({
        orphans: [{ participant: 'ledger_a', gid, txId, branchId: 1, preparedAt: expect.any(String), decision: null, known: false }],
        unreachable: [],
      });
      const text = await runCli(['orphans', '--config', file]);
      expect(text.stdout).toMatch(new RegExp(`${gid} +ledger_a +${txId} +\\S+ +unknown transaction\\n`));

      const rollback = await runCli(['orphans', '--rollback', '--config', file, '--json']);
      expect(rollback.code).toBe(0);
      expect(jsonOf(rollback)).toEqual({ results: [{ gid, txId, participant: 'ledger_a', outcome: 'rolled-back' }] });
      expect(await ledgers.prepared('offa')).toEqual([]);
      expect(await ledgers.transferIds('ledger_a')).not.toContain(`stray-${txId}`);
      expect(await ledgers.prepared('other')).toEqual([foreign]);
    } finally {
      await ledgers.rollbackByHand('ledger_b', foreign);
    }
  });

  it('a heuristic hazard: recover reports work left (exit 8), list --state heuristic finds it, show and history highlight it; settle ends it once reconciled', async () => {
    const { file, dataDir } = writeConfig(dir, ledgers, 'offh');
    const [id] = await strand(ledgers, dataDir, 'offh', { crashAt: 'after-commit-decision:1' });
    // Someone rolls back a branch of a committed transaction behind the coordinator's back.
    await ledgers.rollbackByHand('ledger_b', buildGid('offh', id, 2));

    const recover = await runCli(['recover', '--config', file, '--json']);
    expect(recover.code).toBe(8);
    expect(jsonOf(recover)).toMatchObject({ unfinished: 1, resumedCommit: 1, completed: 0, pending: 1 });

    const heuristic = await runCli(['list', '--state', 'heuristic', '--config', file, '--json']);
    expect(jsonOf(heuristic).transactions).toEqual([
      expect.objectContaining({ id, state: 'committed', hazards: [expect.objectContaining({ branchId: 2, participant: 'ledger_b', detail: expect.stringMatching(/(no marker row|its transaction [0-9]+ aborted), although the decision is commit/) })] }),
    ]);
    const list = await runCli(['list', '--config', file]);
    expect(list.stdout).toMatch(/!! 1\n!! 1 transaction\(s\) with a HEURISTIC HAZARD/);

    const show = await runCli(['show', id, '--config', file]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/2 +ledger_b +!! HEURISTIC HAZARD/);
    expect(show.stdout).toMatch(/!! HEURISTIC HAZARD: 1 branch\(es\) ended differently from the decision/);
    expect(show.stdout).toMatch(/!!   branch 2 on ledger_b \(offh_\w+_2\) at \S+: .*no such prepared transaction/);
    const history = await runCli(['history', id, '--config', file]);
    expect(history.stdout).toMatch(/!! HAZARD +branch 2 on ledger_b/);

    // Recovery leaves it for an operator from now on.
    const again = await runCli(['recover', '--config', file, '--json']);
    expect([again.code, jsonOf(again).leftForLater]).toEqual([8, 1]);

    // The operator reconciles ledger_b by hand, then settles it: refused without a note, without confirmation,
    // or against its decision; then settled, no longer listed, the note in its history.
    const c = ['--config', file];
    const noNote = await runCli(['settle', id, ...c, '--yes', '--json']);
    expect([noNote.code, jsonOf(noNote).error.code]).toEqual([2, 'invalid-input']);
    const note = 'transfer re-applied on ledger_b by hand (OPS-7)';
    expect((await runCli(['settle', id, ...c, '--note', note])).code).toBe(5);
    const contradicting = await runCli(['settle', id, ...c, '--note', note, '--outcome', 'abort', '--yes', '--json']);
    expect([contradicting.code, jsonOf(contradicting).error.code]).toEqual([5, 'state-conflict']);
    const settle = await runCli(['settle', id, ...c, '--note', note, '--yes', '--json']);
    expect([settle.code, jsonOf(settle)]).toEqual([0, { txId: id, outcome: 'commit', finished: 1, hazards: 1 }]);
    expect(jsonOf(await runCli(['list', '--state', 'heuristic', ...c, '--json'])).transactions).toEqual([]);
    const settled = await runCli(['history', id, ...c]);
    expect(settled.stdout).toContain(`asked: settle, note ${JSON.stringify(note)}`);
    expect(settled.stdout).toMatch(/complete +settled by cli:\S+ \(commit\): hazard\(s\) reconciled by hand/);
    expect(settled.stdout).toMatch(/!! HAZARD +branch 2 on ledger_b/);
    const shown = await runCli(['show', id, ...c]);
    expect(shown.stdout).toMatch(/!! HEURISTIC HAZARD: 1 branch\(es\)[^]*!! completed since \(by phase 2 once the participant could prove the outcome, or settled by an operator: twopc history/);
    const twice = await runCli(['settle', id, ...c, '--note', note, '--yes']);
    expect([twice.code, twice.stderr]).toEqual([5, expect.stringMatching(/already completed \(commit\).*\[state-conflict\]/)]);
  });

  it('log verify and log compact; a flipped byte is reported as file:offset (exit 6), and the log is refused', async () => {
    const { file, dataDir } = writeConfig(dir, ledgers, 'offv');
    const first = await strand(ledgers, dataDir, 'offv', { count: 3 });
    const c = ['--config', file];

    const verify = await runCli(['log', 'verify', ...c, '--json']);
    expect(verify.code).toBe(0);
    expect(jsonOf(verify)).toMatchObject({ ok: true, opens: true, damaged: [], missing: [] });

    const compact = await runCli(['log', 'compact', ...c, '--retention', '0', '--json']);
    expect(compact.code).toBe(0);
    expect(jsonOf(compact)).toMatchObject({ forgotten: 3, kept: 0 });
    expect((await runCli(['show', first[0], ...c])).code).toBe(4);

    // More records after the compaction, in a segment; then one byte in the middle of it flips.
    await strand(ledgers, dataDir, 'offv', { count: 3 });
    const segment = fs
      .readdirSync(dataDir)
      .filter((f) => f.startsWith('segment-'))
      .map((f) => path.join(dataDir, f))
      .sort((x, y) => fs.statSync(y).size - fs.statSync(x).size)[0];
    const bytes = fs.readFileSync(segment);
    const flipped = Math.floor(bytes.length / 2);
    bytes[flipped] ^= 0x20;
    fs.writeFileSync(segment, bytes);

    const damaged = await runCli(['log', 'verify', ...c, '--json']);
    expect(damaged.code).toBe(6);
    const report = jsonOf(damaged);
    expect(report).toMatchObject({ ok: false, opens: false });
    expect(report.damaged).toEqual([expect.objectContaining({ file: segment, verdict: 'corrupt' })]);
    const { offset, bytes: length } = report.damaged[0];
    expect(offset <= flipped && flipped < offset + length).toBe(true);

    const text = await runCli(['log', 'verify', ...c]);
    expect(text.code).toBe(6);
    expect(text.stdout).toContain(`damaged: ${segment}:${offset} (${length} bytes at byte offset ${offset})`);
    expect(text.stdout).toMatch(/DAMAGED: the coordinator will refuse to start on this log/);

    const refused = await runCli(['list', ...c]);
    expect(refused.code).toBe(6);
    expect(refused.stderr).toContain(`decision log ${segment} is damaged at byte offset ${offset}`);
  });
});
