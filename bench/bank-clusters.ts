import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { PgCluster } from '../harness/pg-cluster';
import { INITIAL_BALANCE, setupBank } from '../harness/bank';
import type { Cleanup } from './cleanup';
import { startReaper } from './reaper';
import { Ledger, LEDGERS } from './transfer-plan';

export interface BankClustersOptions {
  accounts: number;
  maxConnections: number;
  maxPreparedTransactions: number;
}

/**
 * Two durable throwaway clusters, one ledger database each (ledger_a on one
 * cluster, ledger_b on the other: a real two-server transaction, two WALs to
 * fsync), plus a temp dir for the modes' decision files.
 */
export class BankClusters {
  private constructor(
    private readonly clusters: ReadonlyMap<Ledger, PgCluster>,
    private readonly tempRoot: string,
    readonly accounts: number,
  ) {}

  /** Everything started is registered with `cleanup` as soon as it exists. */
  static async start(options: BankClustersOptions, cleanup: Cleanup): Promise<BankClusters> {
    const tempRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-bench-'));
    cleanup.add(`remove ${tempRoot}`, () => fs.rmSync(tempRoot, { recursive: true, force: true }));
    const clusters = new Map<Ledger, PgCluster>();
    await Promise.all(
      LEDGERS.map(async (ledger) => {
        const cluster = await PgCluster.start({
          name: `bench-${ledger}`,
          durable: true,
          maxConnections: options.maxConnections,
          maxPreparedTransactions: options.maxPreparedTransactions,
        });
        cleanup.add(`destroy cluster ${ledger}`, () => cluster.destroy());
        clusters.set(ledger, cluster);
        await cluster.createDatabase(ledger);
        await cluster.withClient(async (client) => {
          // setupBank wants a Pool only for `query`; a Client has the same method.
          await setupBank(client as unknown as Pool, options.accounts);
          await client.query('vacuum analyze accounts');
        }, ledger);
      }),
    );
    const all = [...clusters.values()];
    startReaper({ dataDirs: all.map((c) => c.dataDir), dirs: [tempRoot, ...all.map((c) => c.dir)] }, process.env.TWOPC_KEEP_CLUSTERS === '1');
    return new BankClusters(clusters, tempRoot, options.accounts);
  }

  /** The clusters' data directories (their servers' CPU is metered per mode). */
  dataDirs(): string[] {
    return [...this.clusters.values()].map((c) => c.dataDir);
  }

  /** A new pool on one ledger. The caller ends it. */
  pool(ledger: Ledger, max: number): Pool {
    const pool = new Pool({ ...this.cluster(ledger).connectionConfig(ledger), max });
    // An idle client whose server went away (Ctrl-C tears clusters down) must not crash the process.
    pool.on('error', () => undefined);
    return pool;
  }

  /** A fresh directory under the bench's temp root (removed at cleanup). */
  tempDir(name: string): string {
    const dir = path.join(this.tempRoot, name);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }

  /**
   * Money is conserved across both ledgers and no prepared transaction is left
   * behind. Every mode moves money between the ledgers, so a transfer that
   * landed in only one of them shows up in the total.
   */
  async check(): Promise<string[]> {
    const problems: string[] = [];
    let total = 0;
    for (const ledger of LEDGERS) {
      await this.cluster(ledger).withClient(async (client) => {
        const sum = await client.query<{ total: string }>('select coalesce(sum(balance), 0)::text as total from accounts');
        total += Number(sum.rows[0].total);
        const prepared = await client.query<{ gid: string }>('select gid from pg_prepared_xacts');
        if (prepared.rows.length > 0) problems.push(`${ledger}: ${prepared.rows.length} prepared transaction(s) left: ${prepared.rows.slice(0, 5).map((r) => r.gid).join(', ')}`);
      }, ledger);
    }
    const expected = LEDGERS.length * this.accounts * INITIAL_BALANCE;
    if (total !== expected) problems.push(`money not conserved: total ${total}, expected ${expected}`);
    return problems;
  }

  private cluster(ledger: Ledger): PgCluster {
    const cluster = this.clusters.get(ledger);
    if (!cluster) throw new Error(`no cluster for ${ledger}`);
    return cluster;
  }
}
