import fs from 'node:fs';
import path from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { buildGid } from '../../participant-sdk/src/gid';
import { TsProcess } from '../e2e/processes';
import { freePort } from '../../coordinator/demo/free-port';
import { TestParticipant } from '../service/test-participant';
import { ContractCheck } from '../support/contract-check';
import { ContractProxy } from '../support/contract-proxy';
import { jsonOf, Ledgers, runCli, strand, tempDir, writeConfig } from './cli-fixture';

/**
 * `twopc` operator commands online: through the admin API of a running
 * `twopc serve` process, on real PostgreSQL. The coordinator starts on a log
 * holding a committed transaction one of whose branches was rolled back by
 * hand, so its recovery meets a heuristic hazard. The CLI (and this test)
 * reach it through a proxy that holds every answer to the coordinator's own
 * /openapi.json.
 */

const API_TOKEN = 'cli-api-token-0123456789';
const ADMIN_TOKEN = 'cli-admin-token-0123456789';
const SECRET = 'cli-participant-secret-0123456789';
const PREFIX = 'on';

describe('twopc operator commands, online (through a running coordinator)', () => {
  let ledgers: Ledgers;
  let dir: string;
  let config: { file: string; dataDir: string };
  let coordinator: TsProcess;
  let contract: ContractCheck;
  let proxy: ContractProxy;
  let url: string;
  let hazardous: string;
  const services: TestParticipant[] = [];
  const admin = { TWOPC_ADMIN_TOKEN: ADMIN_TOKEN };
  const online = (...args: string[]) => runCli([...args, '--url', url], admin);

  beforeAll(async () => {
    ledgers = await Ledgers.start('cli-online');
    dir = tempDir('online');
    // Long phase-2 backoff: a branch that fails once is retried only when an operator says so (or 10-20 s later).
    config = writeConfig(dir, ledgers, PREFIX, { phaseTwoBaseDelayMs: 20_000, phaseTwoMaxDelayMs: 60_000, commitWaitMs: 500 });
    [hazardous] = await strand(ledgers, config.dataDir, PREFIX, { crashAt: 'after-commit-decision:1' });
    await ledgers.rollbackByHand('ledger_b', buildGid(PREFIX, hazardous, 2));
    coordinator = new TsProcess('coordinator', 'coordinator/cli/main.ts', ['serve', '--config', config.file], {
      TWOPC_PORT: '0',
      TWOPC_API_TOKEN: API_TOKEN,
      TWOPC_ADMIN_TOKEN: ADMIN_TOKEN,
      TWOPC_PARTICIPANT_SECRET: SECRET,
      TWOPC_LOG_LEVEL: 'info',
    });
    const ready = await coordinator.start(/"port":(\d+).*"msg":"twopc coordinator ready"/);
    contract = await ContractCheck.of(`http://127.0.0.1:${ready[1]}`);
    proxy = await ContractProxy.start(`http://127.0.0.1:${ready[1]}`, contract);
    url = proxy.url;
  }, 120_000);

  afterAll(async () => {
    await proxy?.close();
    await coordinator?.stop();
    await Promise.all(services.map((s) => s.stop()));
    await ledgers?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    contract?.assertHeld({ minChecked: 20 });
  });

  afterEach(async () => {
    expect(await ledgers.prepared(PREFIX)).toEqual([]);
    contract.assertHeld();
  });

  it('list --state heuristic, show and history surface the hazard; the metrics count it', async () => {
    const [heuristic, show, history, all] = await Promise.all([
      online('list', '--state', 'heuristic', '--json'),
      online('show', hazardous),
      online('history', hazardous, '--json'),
      online('list'),
    ]);
    expect(heuristic.code).toBe(0);
    expect(jsonOf(heuristic).transactions).toEqual([expect.objectContaining({ id: hazardous, state: 'committed', hazards: [expect.objectContaining({ participant: 'ledger_b', branchId: 2 })] })]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/2 +ledger_b +!! HEURISTIC HAZARD/);
    expect(show.stdout).toMatch(/!! HEURISTIC HAZARD: 1 branch\(es\)/);
    expect(jsonOf(history).events.map((e: { type: string }) => e.type)).toEqual(['begin', 'enlist', 'enlist', 'decision', 'hazard']);
    expect(all.stdout).toMatch(/!! 1 transaction\(s\) with a HEURISTIC HAZARD/);

    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^twopc_heuristic_hazards_total\{participant="ledger_b"\} 1$/m);
    expect(metrics).toMatch(/^twopc_transactions_with_hazards 1$/m);
  });

  it('resolve refuses to contradict the recorded decision; recover and retry report the hazard as work left (exit 8)', async () => {
    const resolve = await online('resolve', hazardous, '--abort', '--yes');
    expect(resolve.code).toBe(5);
    expect(resolve.stderr).toMatch(/already decided commit; an operator cannot record abort against it \[state-conflict\]/);

    const recover = await online('recover', '--json');
    expect(recover.code).toBe(8);
    expect(jsonOf(recover)).toMatchObject({ unfinished: 1, leftForLater: 1, completed: 0 });

    const retry = await online('retry', hazardous, '--json');
    expect(retry.code).toBe(8);
    expect(jsonOf(retry)).toEqual({ txId: hazardous, retried: true, decision: 'commit', completed: false, hazards: 1 });
  });

  it('settle ends the hazard once reconciled by hand: out of the list and the gauge, the note in its history', async () => {
    const note = 'ledger_b: transfer re-applied by hand';
    const settle = await online('settle', hazardous, '--note', note, '--yes', '--json');
    expect([settle.code, jsonOf(settle)]).toEqual([0, { txId: hazardous, outcome: 'commit', finished: 1, hazards: 1 }]);
    const [heuristic, history, again] = await Promise.all([
      online('list', '--state', 'heuristic', '--json'),
      online('history', hazardous, '--json'),
      online('settle', hazardous, '--note', note, '--yes'),
    ]);
    expect(jsonOf(heuristic).transactions).toEqual([]);
    expect(jsonOf(history).events.filter((e: { type: string }) => e.type === 'action').pop()).toMatchObject({ by: 'admin', action: 'settle', note });
    expect([again.code, again.stderr]).toEqual([5, expect.stringMatching(/already completed \(commit\).*\[state-conflict\]/)]);
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/^twopc_transactions_with_hazards 0$/m);
  });

  it('retry runs phase 2 now instead of after its backoff', async () => {
    const a = await new TestParticipant(SECRET).start(await freePort());
    const b = await new TestParticipant(SECRET).start(await freePort());
    services.push(a, b);
    const api = async (p: string, body: unknown = {}) => {
      const res = await fetch(`${url}${p}`, { method: 'POST', headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as any };
    };
    const id = (await api('/v1/transactions')).body.id as string;
    await api(`/v1/transactions/${id}/branches`, { participant: 'svc_a', url: a.url });
    const gb = (await api(`/v1/transactions/${id}/branches`, { participant: 'svc_b', url: b.url })).body.gid as string;
    b.behaviour = (op) => (op === 'commit' ? 'fail' : 'normal');
    expect((await api(`/v1/transactions/${id}/commit`)).status).toBe(202);
    b.behaviour = () => 'normal';
    expect(b.states.get(gb)).toBe('prepared');

    const inDoubt = await online('list', '--state', 'in-doubt', '--json');
    expect(jsonOf(inDoubt).transactions.map((t: { id: string }) => t.id)).toContain(id);
    const retry = await online('retry', id, '--json');
    expect(retry.code).toBe(0);
    expect(jsonOf(retry)).toEqual({ txId: id, retried: true, decision: 'commit', completed: true, hazards: 0 });
    expect(b.states.get(gb)).toBe('committed');
  });

  it('orphans lists a prepared branch made by hand and --rollback ends it; resolve decides a transaction known only by its branch', async () => {
    const stray = uuidv7();
    const gid = buildGid(PREFIX, stray, 1);
    await ledgers.prepareByHand('ledger_a', gid, `stray-${stray}`);
    const scan = await online('orphans', '--json');
    expect(scan.code).toBe(0);
    expect(jsonOf(scan).orphans).toEqual([expect.objectContaining({ gid, participant: 'ledger_a', known: false, decision: null })]);
    const rollback = await online('orphans', '--rollback', '--json');
    expect(rollback.code).toBe(0);
    expect(jsonOf(rollback).results).toEqual([{ gid, txId: stray, participant: 'ledger_a', outcome: 'rolled-back' }]);
    expect(await ledgers.transferIds('ledger_a')).not.toContain(`stray-${stray}`);

    // A transaction the log never heard of, with a prepared branch: an operator may commit it.
    const lone = uuidv7();
    await ledgers.prepareByHand('ledger_b', buildGid(PREFIX, lone, 1), `lone-${lone}`);
    const resolve = await online('resolve', lone, '--commit', '--yes', '--json');
    expect(resolve.code).toBe(0);
    expect(jsonOf(resolve)).toEqual({ txId: lone, decision: 'commit', alreadyDecided: false, completed: true, hazards: 0 });
    expect(await ledgers.transferIds('ledger_b')).toContain(`lone-${lone}`);
  });

  it('log verify and log compact through the coordinator', async () => {
    const verify = await online('log', 'verify', '--json');
    expect(verify.code).toBe(0);
    expect(jsonOf(verify)).toMatchObject({ dir: config.dataDir, opens: true, missing: [] });
    const compact = await online('log', 'compact', '--json');
    expect(compact.code).toBe(0);
    expect(jsonOf(compact)).toMatchObject({ forgotten: 0, kept: expect.any(Number) });
    const retention = await online('log', 'compact', '--retention', '0');
    expect([retention.code, retention.stderr]).toEqual([2, expect.stringMatching(/--retention works offline only/)]);
  });

  it('offline commands refuse the log while the coordinator holds it (exit 7, naming its pid); log verify needs no lock', async () => {
    const holder = JSON.parse(fs.readFileSync(path.join(config.dataDir, 'LOCK'), 'utf8')) as { pid: number };
    const [list, verify] = await Promise.all([runCli(['list', '--config', config.file]), runCli(['log', 'verify', '--config', config.file, '--json'])]);
    expect(list.code).toBe(7);
    expect(list.stderr).toMatch(new RegExp(`locked by pid ${holder.pid} .*go through it with --url \\(or TWOPC_URL\\).*\\[log-locked\\]`));
    expect(verify.code).toBe(0);
    expect(jsonOf(verify).opens).toBe(true);
  });

  it('tokens, reachability and unknown ids have their own exit codes', async () => {
    const closed = await freePort();
    const [noToken, apiToken, wrong, viaFlag, unreachable, unknown] = await Promise.all([
      runCli(['list', '--url', url]),
      runCli(['list', '--url', url], { TWOPC_ADMIN_TOKEN: API_TOKEN }),
      runCli(['list', '--url', url, '--token', 'wrong-token-0123456789']),
      runCli(['list', '--url', url, '--token', ADMIN_TOKEN, '--json']),
      runCli(['list', '--url', `http://127.0.0.1:${closed}`], admin),
      runCli(['show', uuidv7()], { ...admin, TWOPC_URL: url }),
    ]);
    expect([noToken.code, apiToken.code, wrong.code]).toEqual([3, 3, 3]);
    expect(noToken.stderr).toMatch(/missing bearer token.*\[unauthorized\]/);
    expect(viaFlag.code).toBe(0);
    expect(jsonOf(viaFlag).transactions).toBeInstanceOf(Array);
    expect(unreachable.code).toBe(7);
    expect(unreachable.stderr).toMatch(/cannot reach the coordinator at .*ECONNREFUSED.*\[coordinator-unavailable\]/);
    expect(unknown.code).toBe(4);
  });
});
