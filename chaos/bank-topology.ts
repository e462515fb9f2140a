import fs from 'node:fs';
import path from 'node:path';
import { freePort } from '../coordinator/demo/free-port';
import { PgCluster } from '../harness/pg-cluster';
import { bankSchemaSql } from './bank-schema';
import { ChaosProxy } from './chaos-proxy';
import type { SharedLog } from './shared-log';
import { SupervisedProcess } from './supervised-process';
import type { Teardown } from './teardown';

const API_TOKEN = 'chaos-api-token-0123456789abcdef';
const SECRET = 'chaos-participant-secret-0123456789';
/** The GID prefix of the coordinator (its default); recovery, sweeps and the checker look for it. */
export const GID_PREFIX = 'twopc';
/** Accounts start with this much: no transfer of the workload can overdraw one. */
export const INITIAL_BALANCE = 10_000;

/** The test-only switches the coordinator may be started with (chaos/test-switches.ts). */
export const COORDINATOR_TEST_ENV = { NODE_ENV: 'test' } as const;

/** One ledger: its database (on one of the clusters), its service, and the two proxied links of that service. */
export interface Ledger {
  index: number;
  name: string;
  cluster: PgCluster;
  databaseUrl: string;
  service: SupervisedProcess;
  /** Direct URL of the service (clients call it here). */
  serviceUrl: string;
  /** The coordinator's calls to this service go through it. */
  inbound: ChaosProxy;
  /** This service's calls to the coordinator go through it (with several instances: to the one it is pointed at now). */
  outbound: ChaosProxy;
}

/** One `twopc serve` process (with several instances: one of them, under its instance name). */
export interface CoordinatorNode {
  index: number;
  /** Instance name (`coord-<i>`), or `coordinator` when there is one on the file log. */
  name: string;
  port: number;
  /** Its API base URL. */
  api: string;
  process: SupervisedProcess;
  /** The file log's directory (unused on a shared log). */
  dataDir: string;
  /** The key the fault injector serializes this process's faults under. */
  target: string;
}

export interface TopologyOptions {
  runDir: string;
  ledgers: number;
  clusters: number;
  accountsPerLedger: number;
  /** Coordinator engine settings that differ from the chaos defaults. */
  engine?: Record<string, unknown>;
  /** Extra environment of every coordinator incarnation (a protocol break for a negative control). */
  coordinatorEnv?: Record<string, string>;
  /** Also give the coordinator direct connections to the ledger databases (its sweeps then end branches too). */
  directDatabases: boolean;
  /** `twopc serve` processes (default 1); more than one needs `sharedLog`. */
  instances?: number;
  /** The decision log the instances share; without it the one coordinator runs on its file log. */
  sharedLog?: SharedLog;
  /** The instances' lease (TWOPC_LEASE_MS) on the shared log. */
  leaseMs?: number;
  log: (message: string) => void;
}

/**
 * Everything under chaos: the PostgreSQL clusters, one ledger database and
 * one participant service process per ledger, the coordinator process on its
 * data directory, and two proxies per service. Every piece is registered
 * with the teardown as soon as it exists.
 */
export class BankTopology {
  private constructor(
    readonly clusters: PgCluster[],
    readonly ledgers: Ledger[],
    readonly coordinators: CoordinatorNode[],
    readonly accountsPerLedger: number,
    readonly sharedLog: SharedLog | undefined,
  ) {}

  readonly token = API_TOKEN;

  /** The (first) coordinator process. */
  get coordinator(): SupervisedProcess {
    return this.coordinators[0].process;
  }

  /** The (first) coordinator's API. */
  get api(): string {
    return this.coordinators[0].api;
  }

  /** The (first) coordinator's file log directory. */
  get dataDir(): string {
    return this.coordinators[0].dataDir;
  }

  get multiInstance(): boolean {
    return this.coordinators.length > 1;
  }

  get expectedTotal(): number {
    return this.ledgers.length * this.accountsPerLedger * INITIAL_BALANCE;
  }

  get proxies(): ChaosProxy[] {
    return this.ledgers.flatMap((l) => [l.inbound, l.outbound]);
  }

  /** Every supervised process, the coordinators first. */
  get processes(): SupervisedProcess[] {
    return [...this.coordinators.map((c) => c.process), ...this.ledgers.map((l) => l.service)];
  }

  /** The key under which the fault injector serializes the faults of process `p`. */
  targetOf(p: SupervisedProcess): string {
    const node = this.coordinators.find((c) => c.process === p);
    if (node) return node.target;
    return `service:${this.ledgers.findIndex((l) => l.service === p)}`;
  }

  static async start(o: TopologyOptions, teardown: Teardown): Promise<BankTopology> {
    const clusters: PgCluster[] = [];
    o.log(`starting ${o.clusters} PostgreSQL cluster(s)`);
    await Promise.all(
      Array.from({ length: o.clusters }, async (_, i) => {
        const cluster = await PgCluster.start({ name: `chaos-${i}`, maxPreparedTransactions: 100, maxConnections: 100 });
        clusters[i] = cluster;
        teardown.add(`cluster chaos-${i}`, () => cluster.destroy());
      }),
    );
    const names = Array.from({ length: o.ledgers }, (_, i) => `ledger_${i}`);
    const databaseUrls = await Promise.all(
      names.map(async (name, i) => {
        const cluster = clusters[i % clusters.length];
        const url = await cluster.createDatabase(name);
        await cluster.withClient((c) => c.query(bankSchemaSql(o.accountsPerLedger, INITIAL_BALANCE)), name);
        return url;
      }),
    );

    const instances = o.instances ?? 1;
    if (instances > 1 && !o.sharedLog) throw new Error('several coordinator instances need a shared log');
    const coordinatorPorts = await Promise.all(Array.from({ length: instances }, () => freePort()));
    const servicePorts = await Promise.all(names.map(() => freePort()));
    const inbound: ChaosProxy[] = [];
    const outbound: ChaosProxy[] = [];
    for (const [i, name] of names.entries()) {
      inbound[i] = await ChaosProxy.start(`coordinator>${name}`, { host: '127.0.0.1', port: servicePorts[i] });
      // Each service starts out talking to "its" instance, so every instance gets enlists of its own and relays others.
      outbound[i] = await ChaosProxy.start(`${name}>coordinator`, { host: '127.0.0.1', port: coordinatorPorts[i % instances] });
      teardown.add(`proxies of ${name}`, async () => {
        await inbound[i].close();
        await outbound[i].close();
      });
    }

    const databases = o.directDatabases ? Object.fromEntries(names.map((n, i) => [n, databaseUrls[i]])) : {};
    const coordinators = coordinatorPorts.map((port, index): CoordinatorNode => {
      // One coordinator on its file log keeps the names it always had; instances are named for their lease.
      const name = o.sharedLog ? `coord-${index + 1}` : 'coordinator';
      const dataDir = path.join(o.runDir, `${name}-data`);
      const configFile = path.join(o.runDir, `${name}.json`);
      fs.writeFileSync(configFile, JSON.stringify(coordinatorConfig(o, port, dataDir, databases, name), null, 2));
      const proc = new SupervisedProcess({
        label: name,
        entry: 'chaos/coordinator-entry.ts',
        args: ['--config', configFile],
        env: { ...COORDINATOR_TEST_ENV, TWOPC_LOG_LEVEL: 'info', ...(o.coordinatorEnv ?? {}) },
        ready: /"msg":"twopc coordinator ready"/,
        logFile: path.join(o.runDir, `${name}.log`),
        startTimeoutMs: 90_000,
      });
      teardown.add(`${name} process`, async () => {
        await proc.kill();
        await proc.dispose();
      });
      teardown.onExit(() => proc.killSync());
      return { index, name, port, api: `http://127.0.0.1:${port}`, process: proc, dataDir, target: instances === 1 ? 'coordinator' : `coordinator:${index}` };
    });
    o.log(`starting ${instances === 1 ? `the coordinator on ${coordinators[0].api}` : `${instances} coordinator instances on ${coordinators.map((c) => c.api).join(', ')}`}${o.sharedLog ? ` (decision log: ${o.sharedLog.label})` : ''}`);
    // Together: the first start on a shared log migrates it, the others wait for that.
    await Promise.all(coordinators.map((c) => c.process.start()));

    const ledgers: Ledger[] = [];
    for (const [i, name] of names.entries()) {
      const service = new SupervisedProcess({
        label: name,
        entry: 'chaos/ledger-service.ts',
        env: {
          PORT: String(servicePorts[i]),
          DATABASE_URL: databaseUrls[i],
          NAME: name,
          PUBLIC_URL: `${inbound[i].url}/twopc`,
          COORDINATOR_URL: outbound[i].url,
          TWOPC_API_TOKEN: API_TOKEN,
          TWOPC_PARTICIPANT_SECRET: SECRET,
        },
        ready: /"ready":true/,
        logFile: path.join(o.runDir, `${name}.log`),
        startTimeoutMs: 60_000,
      });
      teardown.add(`service ${name}`, async () => {
        await service.kill();
        await service.dispose();
      });
      teardown.onExit(() => service.killSync());
      ledgers.push({ index: i, name, cluster: clusters[i % clusters.length], databaseUrl: databaseUrls[i], service, serviceUrl: `http://127.0.0.1:${servicePorts[i]}`, inbound: inbound[i], outbound: outbound[i] });
    }
    o.log(`starting ${ledgers.length} ledger services`);
    await Promise.all(ledgers.map((l) => l.service.start()));
    return new BankTopology(clusters, ledgers, coordinators, o.accountsPerLedger, o.sharedLog);
  }
}

/**
 * Short timeouts and retries, so that a run spends its time on faults and
 * recovery rather than on waiting: transactions expire after a few seconds,
 * phase 2 retries within half a second, and sweeps run twice a second.
 */
function coordinatorConfig(o: TopologyOptions, port: number, dataDir: string, databases: Record<string, string>, name: string): object {
  return {
    host: '127.0.0.1',
    port,
    dataDir,
    // A restart under the same instance name takes over its previous process at once.
    ...(o.sharedLog
      ? { log: o.sharedLog.url, allowVolatile: o.sharedLog.allowVolatile, instance: { name, url: `http://127.0.0.1:${port}`, leaseMs: o.leaseMs ?? 2_000 } }
      : {}),
    databases,
    apiToken: API_TOKEN,
    participantSecret: SECRET,
    logLevel: 'info',
    participantCalls: { prepareTimeoutMs: 2_500, phaseTwoTimeoutMs: 2_500, statusTimeoutMs: 1_500, connectTimeoutMs: 1_000 },
    http: { shutdownTimeoutMs: 1_000 },
    engine: {
      defaultTimeoutMs: 4_000,
      maxTimeoutMs: 8_000,
      commitWaitMs: 1_500,
      phaseTwoBaseDelayMs: 25,
      phaseTwoMaxDelayMs: 500,
      sweepIntervalMs: 500,
      sweepGraceMs: 1_000,
      ...(o.engine ?? {}),
    },
  };
}
