import fs from 'node:fs';
import path from 'node:path';
import type { PgCluster } from '../../harness/pg-cluster';
import { freePort } from '../../coordinator/demo/free-port';
import { ServeProcess } from '../service-crash/serve-process';

export const API_TOKEN = 'multi-api-token-0123456789';
export const ADMIN_TOKEN = 'multi-admin-token-0123456789';
export const SECRET = 'multi-participant-secret-0123456789';
export const LEASE_MS = 2_000;

/** One `twopc serve` process of a cluster, on its own port. */
export class CoordinatorInstance {
  constructor(
    readonly name: string,
    readonly port: number,
    readonly process: ServeProcess,
  ) {}

  get api(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Parsed JSON log lines whose `msg` starts with `msg`. */
  logLines(msg: string): Array<Record<string, unknown>> {
    const lines: Array<Record<string, unknown>> = [];
    for (const line of this.process.log.split('\n')) {
      if (!line.includes(`"msg":"${msg}`)) continue;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // A line cut short by SIGKILL.
      }
    }
    return lines;
  }

  /** The fencing tokens of the leases this process registered, oldest first. */
  get tokens(): number[] {
    return this.logLines('coordinator lease registered').map((l) => Number(l.token));
  }

  /** Tokens of the leases this process took over because they expired. */
  get takenOver(): number[] {
    return this.logLines('took over the transactions of an instance whose lease expired').map((l) => Number(l.token));
  }

  async readyz(): Promise<number> {
    try {
      return (await fetch(`${this.api}/readyz`, { signal: AbortSignal.timeout(2_000) })).status;
    } catch {
      return 0;
    }
  }

  /** Transactions this instance lists (live here, or unfinished in the shared log), optionally of one state. */
  async list(state?: string): Promise<Array<{ id: string; state: string }>> {
    const res = await fetch(`${this.api}/v1/transactions${state ? `?state=${state}` : ''}`, {
      headers: { authorization: `Bearer ${API_TOKEN}` },
      signal: AbortSignal.timeout(5_000),
    });
    if (res.status !== 200) throw new Error(`${this.name}: GET /v1/transactions answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { transactions: Array<{ id: string; state: string }> }).transactions;
  }

  /** Resumes it if paused, then stops it gracefully. */
  async stop(): Promise<void> {
    this.process.signal('SIGCONT');
    await this.process.stop();
  }
}

export interface PairOptions {
  dir: string;
  /** Decision log URL shared by both (`postgres://…?schema=…` or `redis://…?namespace=…`). */
  log: string;
  /** The PostgreSQL test cluster runs with fsync off: its log is volatile by design. */
  allowVolatile: boolean;
  /** Holds ledger_a and ledger_b, which both instances sweep directly. */
  ledgers: PgCluster;
  /** Default `LEASE_MS`. */
  leaseMs?: number;
  /** Engine settings over the pair's defaults (a longer `maxTimeoutMs`, say). */
  engine?: Record<string, number>;
}

/** Starts two instances (`coord-1`, `coord-2`) on one shared decision log, in parallel (they migrate the log together). */
export async function startCoordinatorPair(o: PairOptions): Promise<[CoordinatorInstance, CoordinatorInstance]> {
  const start = async (name: string): Promise<CoordinatorInstance> => {
    const port = await freePort();
    const config = path.join(o.dir, `${name}.json`);
    fs.writeFileSync(
      config,
      JSON.stringify({
        host: '127.0.0.1',
        port,
        dataDir: path.join(o.dir, `${name}-data`),
        log: o.log,
        allowVolatile: o.allowVolatile,
        instance: { name, url: `http://127.0.0.1:${port}`, leaseMs: o.leaseMs ?? LEASE_MS },
        // Both reach both databases directly too: their sweeps end prepared branches nobody else would.
        databases: { ledger_a: o.ledgers.connectionString('ledger_a'), ledger_b: o.ledgers.connectionString('ledger_b') },
        apiToken: API_TOKEN,
        adminToken: ADMIN_TOKEN,
        participantSecret: SECRET,
        logLevel: 'info',
        participantCalls: { prepareTimeoutMs: 2_000, phaseTwoTimeoutMs: 2_000, statusTimeoutMs: 1_000, connectTimeoutMs: 1_000 },
        http: { shutdownTimeoutMs: 2_000 },
        engine: { defaultTimeoutMs: 3_000, maxTimeoutMs: 10_000, commitWaitMs: 1_000, phaseTwoBaseDelayMs: 20, phaseTwoMaxDelayMs: 200, sweepIntervalMs: 500, sweepGraceMs: 500, ...o.engine },
      }),
    );
    const proc = new ServeProcess(config, { TWOPC_LOG_LEVEL: 'info' });
    await proc.start();
    return new CoordinatorInstance(name, port, proc);
  };
  const started = await Promise.allSettled([start('coord-1'), start('coord-2')]);
  const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.allSettled(ok.map((i) => i.stop()));
    throw failed.reason;
  }
  return [ok[0], ok[1]];
}
