import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BankTopology, GID_PREFIX, INITIAL_BALANCE } from '../../chaos/bank-topology';
import { checkConsistency } from '../../chaos/checker';
import { readCoordinatorView } from '../../chaos/coordinator-view';
import { History } from '../../chaos/history';
import { preparedLeft, readLedger } from '../../chaos/ledger-state';
import { waitForQuiescence } from '../../chaos/quiescence';
import { Rng } from '../../chaos/random';
import { Teardown } from '../../chaos/teardown';
import { runWorkload } from '../../chaos/workload';
import { verifyLog } from '../../coordinator/log/file/log-verify';
import { TEST_LOG_FAULT_ENV } from '../../chaos/test-switches';

/**
 * Storage faults of the file log under `twopc serve`: the disk fills up
 * (ENOSPC) or an fdatasync fails (EIO, and the unsynced tail is lost) while
 * bank transfers run through participant services. The coordinator must stop
 * taking work, say why (`/readyz` false, every `/v1` call 503
 * `log-unavailable`), stay alive (`/healthz`), and, once restarted on a
 * healthy disk, have lost no decision it acknowledged: every acknowledged
 * two-phase commit is there and completed, and the checker finds nothing.
 */

describe('twopc serve on a failing disk', () => {
  const teardown = new Teardown();
  let runDir: string;
  let t: BankTopology;
  // One history for both cases: the ledgers hold the transfers of both, and the checker looks at all.
  let history: History;

  beforeAll(async () => {
    runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-storage-faults-'));
    history = new History(path.join(runDir, 'history.jsonl'));
    teardown.add('history', () => history.close());
    t = await BankTopology.start({ runDir, ledgers: 2, clusters: 1, accountsPerLedger: 200, directDatabases: true, log: () => undefined }, teardown);
  }, 120_000);

  afterAll(async () => {
    await teardown.run((m) => console.error(m));
    fs.rmSync(runDir, { recursive: true, force: true });
  });

  const get = async (url: string, token?: string) => {
    const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it.each([
    ['disk full', 'write:ENOSPC:40', 'ENOSPC'],
    ['fdatasync I/O error', 'fdatasync:EIO:25', 'EIO'],
  ])('%s (%s): unready, refuses work with log-unavailable, loses no acknowledged commit', async (_name, fault, errno) => {
    await t.coordinator.kill();
    await t.coordinator.start({ [TEST_LOG_FAULT_ENV]: fault });
    const before = history.records.length;
    let unready = false;
    const watch = setInterval(() => {
      void fetch(`${t.api}/readyz`).then(
        (r) => {
          if (r.status === 503) unready = true;
          return r.arrayBuffer();
        },
        () => undefined,
      );
    }, 100);
    let claimed = 0;
    try {
      await runWorkload({
        api: t.api,
        token: t.token,
        services: t.ledgers.map((l) => l.serviceUrl),
        names: t.ledgers.map((l) => l.name),
        accountsPerLedger: t.accountsPerLedger,
        workers: 4,
        rng: Rng.derive(7, fault),
        history,
        txTimeoutMs: 4_000,
        claim: () => !unready && claimed++ < 3_000,
        stopping: () => unready,
      });
    } finally {
      clearInterval(watch);
    }
    expect(unready).toBe(true);

    // Alive, not ready, and every API call says why.
    expect((await get(`${t.api}/healthz`)).status).toBe(200);
    expect(await get(`${t.api}/readyz`)).toEqual({ status: 503, body: { ready: false } });
    const begin = await fetch(`${t.api}/v1/transactions`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' }, body: '{}' });
    const problem = (await begin.json()) as { code: string; detail: string };
    expect([begin.status, problem.code]).toEqual([503, 'log-unavailable']);
    expect(problem.detail).toMatch(new RegExp(`${errno}.*restart the coordinator once the disk is healthy`));
    const acknowledged = history.records.slice(before).filter((r) => r.outcome === 'ok');
    expect(acknowledged.length).toBeGreaterThan(0);
    expect((await get(`${t.api}/v1/transactions/${acknowledged[0].id}`, t.token)).body.code).toBe('log-unavailable');
    expect(t.coordinator.tail(200_000)).toContain(`TEST ONLY: injected ${errno}`);

    // A healthy disk again: recovery finishes everything, and nothing acknowledged is lost.
    await t.coordinator.kill();
    expect((await verifyLog(t.dataDir)).opens).toBe(true);
    await t.coordinator.start();
    const quiescence = await waitForQuiescence(t, 60_000, () => undefined);
    const coordinator = await readCoordinatorView(t.api, t.token, history.records.map((r) => r.id));
    const { violations } = checkConsistency({
      history: history.records,
      ledgers: await Promise.all(t.ledgers.map((l) => readLedger(l))),
      initialBalance: INITIAL_BALANCE,
      prepared: await preparedLeft(t, GID_PREFIX),
      coordinator,
      unfinished: quiescence.unfinished,
      quiescent: quiescence.quiescent,
      logVerify: { ok: true, problems: [] },
      observations: [],
    });
    expect(violations).toEqual([]);
    // Two-phase commits were forced to the log before they were acknowledged: each is there, and completed.
    // (A one-phase commit has no decision record: the participant's COMMIT is the decision.)
    for (const r of acknowledged.filter((x) => x.ledgers.length > 1)) {
      expect([r.id, coordinator.get(r.id)]).toEqual([r.id, { found: true, state: 'completed', decision: 'commit', hazards: 0 }]);
    }
  }, 120_000);
});
