import type { Pool } from 'pg';
import { TsProcess } from '../e2e/processes';
import { freePort } from '../../coordinator/demo/free-port';
import type { PgCluster } from '../../harness/pg-cluster';
import type { TransferKind } from '../service-crash/bank-traffic';
import type { ClusterOutcomes } from './cluster-traffic';
import { API_TOKEN, SECRET } from './coordinator-pair';
import { ACCOUNTS, INITIAL, ledgerState } from '../service-crash/ledger-db';

export { ACCOUNTS, createLedger } from '../service-crash/ledger-db';

/** A ledger service process (test/service-crash/ledger-service.ts) whose coordinator is `coordinatorUrl`; resolves to its base URL. */
export async function startLedgerService(cluster: PgCluster, db: string, coordinatorUrl: string): Promise<{ proc: TsProcess; url: string }> {
  const port = await freePort();
  const proc = new TsProcess(db, 'test/service-crash/ledger-service.ts', [], {
    PORT: String(port),
    DATABASE_URL: cluster.connectionString(db),
    NAME: db,
    COORDINATOR_URL: coordinatorUrl,
    TWOPC_API_TOKEN: API_TOKEN,
    TWOPC_PARTICIPANT_SECRET: SECRET,
  });
  await proc.start(/"ready":true/);
  return { proc, url: `http://127.0.0.1:${port}` };
}


/**
 * SPEC §9 after quiescence: every transfer in both ledgers or neither (one,
 * for a local transfer), every acknowledged commit visible, every
 * acknowledged abort invisible, money conserved. Compare with `CONSISTENT`.
 */
export async function ledgerVerdict(pools: { a: Pool; b: Pool }, outcomes: ClusterOutcomes) {
  const [a, b] = await Promise.all([ledgerState(pools.a), ledgerState(pools.b)]);
  const visibleIn = (id: string): string => (a.ids.has(id) ? 'a' : '') + (b.ids.has(id) ? 'b' : '');
  const expectedWhere: Record<TransferKind, string> = { cross: 'ab', 'vote-no': 'ab', 'local-a': 'a', 'local-b': 'b' };
  const halfApplied = [...new Set([...a.ids, ...b.ids])].filter((id) => visibleIn(id) !== expectedWhere[outcomes.kinds.get(id) ?? 'cross']);
  const lostCommits = [...outcomes.committed].filter((id) => visibleIn(id) !== expectedWhere[outcomes.kinds.get(id)!]);
  const visibleAborts = [...outcomes.aborted].filter((id) => visibleIn(id) !== '');
  const bothWays = [...outcomes.committed].filter((id) => outcomes.aborted.has(id));
  return { halfApplied, lostCommits, visibleAborts, bothWays, total: a.total + b.total };
}

export const CONSISTENT = { halfApplied: [], lostCommits: [], visibleAborts: [], bothWays: [], total: 2 * ACCOUNTS * INITIAL };
