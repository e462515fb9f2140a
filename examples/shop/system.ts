import path from 'node:path';
import { RunningCoordinator, startCoordinator } from '../../coordinator/demo/coordinator-process';
import { freePort } from '../../coordinator/demo/free-port';
import { LocalPostgres } from '../../coordinator/demo/local-postgres';
import { NodeProcess } from '../../coordinator/demo/node-process';
import { findPostgresBin } from '../../coordinator/demo/postgres-binaries';
import type { Reaper } from '../../coordinator/demo/reaper';
import type { Teardown } from '../../coordinator/demo/teardown';
import { Service, SERVICES } from './client';

/** Everything the shop runs, started and ready. */
export interface ShopSystem {
  coordinator: RunningCoordinator;
  /** Base URL of each service. */
  serviceUrls: Record<Service, string>;
  /** Connection string of each service's database (for the final check, which reads them directly). */
  databases: Record<Service, string>;
  /** The last lines every process printed, for a failure report. */
  logTails(): string;
}

export interface ShopSystemOptions {
  /** Temp directory of the run (the coordinator's log goes below it). */
  root: string;
  /** Each service's settings beyond those of every participant service (the seeds). */
  env: Record<Service, Record<string, string>>;
  /** pg pool of each service: a held branch keeps its connection until PREPARE. */
  poolSize: number;
  teardown: Teardown;
  reaper: Reaper;
  note(line: string): void;
}

/**
 * Starts the shop: one throwaway PostgreSQL cluster per service (as in
 * production, where they would not share a server), the coordinator
 * (`twopc serve`) and the three services, each its own process. Everything is
 * registered with `teardown` (and the reaper) as soon as it exists, so a
 * failure half way leaves nothing behind.
 */
export async function startShop(o: ShopSystemOptions): Promise<ShopSystem> {
  // Before anything is created: no cluster, process or directory is left behind when PostgreSQL is missing.
  findPostgresBin();
  const processes: NodeProcess[] = [];
  const track = (proc: NodeProcess, label: string) => {
    processes.push(proc);
    o.reaper.add('pid', proc.pid);
    o.teardown.add(`stop ${label}`, () => proc.stop());
  };
  // Chosen up front: the coordinator is told exactly which participant URLs it may call.
  const ports = await Promise.all(SERVICES.map(() => freePort()));
  const serviceUrls = byService((_, i) => `http://127.0.0.1:${ports[i]}`);

  o.note(`starting ${SERVICES.length} PostgreSQL clusters (${SERVICES.join(', ')}) and the coordinator…`);
  const [urls, coordinator] = await settleAll([
    settleAll(SERVICES.map((s) => startDatabase(s, o))),
    startCoordinator({ dir: path.join(o.root, 'coordinator'), participantUrls: SERVICES.map((s) => `${serviceUrls[s]}/twopc`) }).then((c) => {
      track(c.process, 'coordinator');
      return c;
    }),
  ]);
  const databases = byService((_, i) => urls[i]);

  o.note(`starting the services (${SERVICES.map((s) => `${s} at ${serviceUrls[s]}`).join(', ')})…`);
  await settleAll(
    SERVICES.map(async (service, i) => {
      const { proc } = await NodeProcess.start({
        label: service,
        entry: `examples/shop/services/${service}-service`,
        env: {
          NAME: service,
          PORT: String(ports[i]),
          DATABASE_URL: databases[service],
          COORDINATOR_URL: coordinator.url,
          TWOPC_API_TOKEN: coordinator.apiToken,
          TWOPC_PARTICIPANT_SECRET: coordinator.participantSecret,
          POOL_SIZE: String(o.poolSize),
          ...o.env[service],
        },
        ready: /"ready":true/,
      });
      track(proc, `the ${service} service`);
    }),
  );
  return { coordinator, serviceUrls, databases, logTails: () => processes.map((p) => p.tail()).join('\n') };
}

function byService<T>(value: (service: Service, index: number) => T): Record<Service, T> {
  return Object.fromEntries(SERVICES.map((s, i) => [s, value(s, i)])) as Record<Service, T>;
}

async function startDatabase(service: Service, o: ShopSystemOptions): Promise<string> {
  const cluster = await LocalPostgres.start({ name: `shop-${service}` });
  o.teardown.add(`stop the ${service} cluster`, () => cluster.destroy());
  o.reaper.add('pgdata', cluster.dataDir);
  if (process.env.TWOPC_KEEP_CLUSTERS !== '1') o.reaper.add('dir', cluster.dir);
  return cluster.createDatabase(service);
}

/** Like Promise.all, but waits for every start to settle first, so each one that succeeded got registered for teardown. */
async function settleAll<T extends readonly unknown[] | []>(starts: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = (await Promise.allSettled(starts)) as PromiseSettledResult<unknown>[];
  for (const s of settled) if (s.status === 'rejected') throw s.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}
