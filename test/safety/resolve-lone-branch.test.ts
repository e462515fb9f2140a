import fs from 'node:fs';
import path from 'node:path';
import { freePort } from '../../coordinator/demo/free-port';
import { PgCluster } from '../../harness/pg-cluster';
import { jsonLines, runTs } from '../support/child';
import { ServeProcess } from '../service-crash/serve-process';
import { jsonOf, runCli, tempDir } from '../cli/cli-fixture';

/**
 * Finding 1: an operator's `twopc resolve T --abort` of an undecided
 * transaction used to record abort at once. A one-phase COMMIT leaves no
 * decision record, so a one-phase commit whose answer was lost (its
 * coordinator died right after the COMMIT) got an abort recorded for a
 * branch that committed. An undecided resolve now goes through recovery's
 * rule (roll the lone branch back, then learn its state): it finds the
 * commit and refuses to contradict it; it refuses when that state cannot be
 * learned; and it refuses to act on a transaction another live coordinator
 * instance owns (an offline CLI joining a shared log while the owner runs).
 *
 * Every actor is a real process: the application that strands the
 * transaction (SIGKILLed at a crash point), `twopc` itself, `twopc serve`.
 */

const WORKER = path.join(__dirname, 'one-branch-worker.ts');
const API_TOKEN = 'safety-api-token-0123456789';
const ADMIN_TOKEN = 'safety-admin-token-0123456789';

describe('twopc resolve of an undecided transaction follows recovery\'s rule', () => {
  let cluster: PgCluster;
  let dir: string;
  const serves: ServeProcess[] = [];

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-resolve' });
    await cluster.createDatabase('app');
    await cluster.createDatabase('twopc_log');
    await cluster.withClient((c) => c.query('create table items (id text primary key)'), 'app');
    dir = tempDir('safety-resolve');
  });

  afterAll(async () => {
    for (const s of serves) await s.stop();
    await cluster?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    for (const prefix of ['srl', 'sru', 'sro']) expect(await cluster.preparedGids(prefix)).toEqual([]);
  });

  /** A config file for `twopc` / `twopc serve` with the one database `ledger` at `ledgerUrl`. */
  function config(label: string, prefix: string, extra: Record<string, unknown> = {}, ledgerUrl = cluster.connectionString('app')): { file: string; dataDir: string } {
    const dataDir = path.join(dir, `log-${prefix}`);
    const file = path.join(dir, `config-${label}.json`);
    fs.writeFileSync(file, JSON.stringify({ dataDir, databases: { ledger: ledgerUrl }, engine: { gidPrefix: prefix, sweepIntervalMs: 0, phaseTwoBaseDelayMs: 10, phaseTwoMaxDelayMs: 100 }, ...extra }));
    return { file, dataDir };
  }

  /** Runs one one-branch transaction through an app embedding the coordinator, SIGKILLed at `crashAt`; returns its id. */
  async function strand(dataDir: string, prefix: string, crashAt: string): Promise<string> {
    const run = await runTs(WORKER, { LOG_DIR: dataDir, PG_URL: cluster.connectionString('app'), GID_PREFIX: prefix, COUNT: '1', TWOPC_CRASH_AT: crashAt, NODE_ENV: 'test' });
    expect({ signal: run.signal, stderr: run.stderr }).toEqual({ signal: 'SIGKILL', stderr: '' });
    const begun = jsonLines<{ begun?: string }>(run.stdout).flatMap((l) => (l.begun ? [l.begun] : []));
    expect(begun).toHaveLength(1);
    return begun[0];
  }

  const committedRow = (id: string) => cluster.withClient(async (c) => (await c.query('select 1 from items where id = $1', [id])).rows.length, 'app');

  it('a one-phase commit whose answer was lost: resolve --abort finds the commit and refuses (exit 5); the log says commit', async () => {
    const { file, dataDir } = config('one-phase', 'srl');
    const id = await strand(dataDir, 'srl', 'after-one-phase-commit:1');
    expect(await committedRow(id)).toBe(1);

    const resolve = await runCli(['resolve', id, '--abort', '--yes', '--config', file, '--json']);
    expect({ code: resolve.code, error: jsonOf(resolve).error?.message }).toEqual({ code: 5, error: expect.stringMatching(/committed|decided commit/) });

    const show = await runCli(['show', id, '--config', file, '--json']);
    expect(jsonOf(show)).toMatchObject({ id, decision: 'commit', hazards: [] });
    expect(await committedRow(id)).toBe(1);
  });

  it('the only branch cannot be asked (its database is unreachable): resolve --abort refuses and records nothing', async () => {
    const strandConfig = config('unreachable-strand', 'sru');
    const id = await strand(strandConfig.dataDir, 'sru', 'after-enlist:1');
    const unreachable = `postgresql://postgres@127.0.0.1:${await freePort()}/app`;
    const { file } = config('unreachable', 'sru', {}, unreachable);

    const resolve = await runCli(['resolve', id, '--abort', '--yes', '--config', file, '--json']);
    expect(resolve.code).not.toBe(0);
    expect(jsonOf(resolve).error).toMatchObject({ code: 'participant-unavailable', exitCode: 7 });
    const show = await runCli(['show', id, '--config', file, '--json']);
    expect(jsonOf(show)).toMatchObject({ id, decision: null });

    // With the database back, the same resolve goes through the rule: the branch never committed, abort is recorded.
    const again = await runCli(['resolve', id, '--abort', '--yes', '--config', strandConfig.file, '--json']);
    expect({ code: again.code, out: jsonOf(again) }).toEqual({ code: 0, out: expect.objectContaining({ txId: id, decision: 'abort', alreadyDecided: false }) });
    expect(await committedRow(id)).toBe(0);
  });

  it('a transaction a live `twopc serve` owns on a shared log: the offline CLI refuses to resolve it, and its owner still commits it', async () => {
    const port = await freePort();
    const log = `${cluster.connectionString('twopc_log')}?schema=sro`;
    const shared = { log, allowVolatile: true, host: '127.0.0.1', port, apiToken: API_TOKEN, adminToken: ADMIN_TOKEN, logLevel: 'info', instance: { name: 'owner', url: `http://127.0.0.1:${port}`, leaseMs: 60_000 } };
    const { file } = config('owner-serve', 'sro', shared);
    const serve = new ServeProcess(file, {});
    serves.push(serve);
    await serve.start();
    const api = (method: string, p: string, body?: unknown) =>
      fetch(`http://127.0.0.1:${port}${p}`, { method, headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const begun = await api('POST', '/v1/transactions', {});
    expect(begun.status).toBe(201);
    const id = ((await begun.json()) as { id: string }).id;

    const cliConfig = config('owner-cli', 'sro', { log, allowVolatile: true }).file;
    const resolve = await runCli(['resolve', id, '--abort', '--yes', '--config', cliConfig, '--json']);
    expect(jsonOf(resolve).error).toMatchObject({ code: 'owner-unavailable', exitCode: 7 });
    expect(resolve.code).toBe(7);

    const commit = await api('POST', `/v1/transactions/${id}/commit`, {});
    expect({ status: commit.status, body: await commit.json() }).toMatchObject({ status: 200, body: { state: 'committed' } });
    await serve.stop();
  });
});
