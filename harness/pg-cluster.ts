import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../coordinator/demo/free-port';
import { LocalPostgres, POSTGRES_RUN_AS, type LocalPostgresOptions } from '../coordinator/demo/local-postgres';
import { findPostgresBin } from '../coordinator/demo/postgres-binaries';

export type ClusterOptions = LocalPostgresOptions;

/**
 * A throwaway PostgreSQL cluster for tests, benchmarks and chaos runs: the
 * demo's LocalPostgres (free port, own data directory, crash and restart),
 * plus what tests ask of it: standbys, and the prepared transactions left.
 *
 * @example
 * const pg = await PgCluster.start({ name: 'ledger' });
 * await pg.assertNoPrepared('twopc');
 */
export class PgCluster extends LocalPostgres {
  /**
   * A streaming standby of `primary` (a real one: WAL streamed over a
   * replication connection, hot standby for reads), named `applicationName` in
   * the primary's pg_stat_replication and synchronous_standby_names. It starts
   * from a cold copy of the primary's data directory: the primary is stopped
   * cleanly (a checkpoint), copied, and started again, so no pg_basebackup of
   * the same major version is needed.
   */
  static async standbyOf(primary: PgCluster, applicationName: string): Promise<PgCluster> {
    const bin = findPostgresBin();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `twopc-${applicationName}-`));
    const conninfo = `host=${primary.host} port=${primary.port} user=postgres application_name=${applicationName}`;
    const options: Required<ClusterOptions> = { ...primary.options, name: applicationName, settings: { ...primary.options.settings, primary_conninfo: conninfo, hot_standby: 'on' } };
    delete options.settings.synchronous_standby_names;
    const standby = new PgCluster({ port: await freePort(), dir, bin, options });
    try {
      await primary.stop();
      // cp -a keeps the owner (nobody, when running as root) and modes PostgreSQL insists on.
      const copy = spawnSync('cp', ['-a', primary.dataDir, standby.dataDir], { encoding: 'utf8' });
      await primary.startServer();
      if (copy.status !== 0) throw new Error(`copying ${primary.dataDir} failed: ${copy.stderr}`);
      if (POSTGRES_RUN_AS) fs.chownSync(dir, POSTGRES_RUN_AS.uid, POSTGRES_RUN_AS.gid);
      fs.rmSync(path.join(standby.dataDir, 'postmaster.pid'), { force: true });
      fs.writeFileSync(path.join(standby.dataDir, 'standby.signal'), '');
      if (POSTGRES_RUN_AS) fs.chownSync(path.join(standby.dataDir, 'standby.signal'), POSTGRES_RUN_AS.uid, POSTGRES_RUN_AS.gid);
      await standby.startServer();
    } catch (e) {
      await standby.destroy();
      throw e;
    }
    return standby;
  }

  /** GIDs of prepared transactions whose GID starts with `prefix_` (any database of the cluster). */
  async preparedGids(prefix: string): Promise<string[]> {
    return this.withClient(async (c) => {
      const r = await c.query<{ gid: string }>(`select gid from pg_prepared_xacts where starts_with(gid, $1) order by gid`, [`${prefix}_`]);
      return r.rows.map((row) => row.gid);
    });
  }

  /** Throws, listing them, if any prepared transaction of ours is left behind. */
  async assertNoPrepared(prefix: string): Promise<void> {
    const left = await this.preparedGids(prefix);
    if (left.length > 0) throw new Error(`${this.options.name}: ${left.length} prepared transaction(s) left behind: ${left.slice(0, 10).join(', ')}`);
  }
}
