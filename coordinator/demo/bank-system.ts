import path from 'node:path';
import { freePort } from './free-port';
import { LocalPostgres } from './local-postgres';
import { findPostgresBin } from './postgres-binaries';
import { RunningCoordinator, startCoordinator } from './coordinator-process';
import { NodeProcess } from './node-process';
import type { Reaper } from './reaper';
import type { Teardown } from './teardown';
import { Bank, BANKS } from './transfer-plan';

/** Everything the demo runs, started and ready. */
export interface BankSystem {
  coordinator: RunningCoordinator;
  /** Base URL of each bank's account service. */
  serviceUrls: Record<Bank, string>;
  /** Connection string of each bank's database (for the final check, which reads them directly). */
  databases: Record<Bank, string>;
  /** The last lines every process printed, for a failure report. */
  logTails(): string;
}

export interface BankSystemOptions {
  /** Temp directory of the run (the coordinator's log goes below it). */
  root: string;
  accounts: number;
  initialBalance: number;
  /** pg pool of each service: a held branch keeps its connection until PREPARE. */
  poolSize: number;
  teardown: Teardown;
  reaper: Reaper;
  note(line: string): void;
}

/**
 * Starts the bank: one throwaway PostgreSQL cluster per bank, the
 * coordinator (`twopc serve`) and one account service per bank, each its own
 * process. Everything is registered with `teardown` (and the reaper) as soon
 * as it exists, so a failure half way leaves nothing behind.
 */
export async function startBankSystem(o: BankSystemOptions): Promise<BankSystem> {
  // Before anything is created: no cluster, process or directory is left behind when PostgreSQL is missing.
  findPostgresBin();
  const processes: NodeProcess[] = [];
  const track = (proc: NodeProcess, label: string) => {
    processes.push(proc);
    o.reaper.add('pid', proc.pid);
    o.teardown.add(`stop ${label}`, () => proc.stop());
  };
  // Chosen up front: the coordinator is told exactly which participant URLs it may call.
  const ports = await Promise.all(BANKS.map(() => freePort()));
  const serviceUrls = Object.fromEntries(BANKS.map((bank, i) => [bank, `http://127.0.0.1:${ports[i]}`])) as Record<Bank, string>;

  o.note(`starting ${BANKS.length} PostgreSQL clusters (${BANKS.join(', ')}) and the coordinator…`);
  const [databases, coordinator] = await settleAll([
    Promise.all(BANKS.map((bank) => startDatabase(bank, o))).then((urls) => Object.fromEntries(BANKS.map((bank, i) => [bank, urls[i]])) as Record<Bank, string>),
    startCoordinator({
      dir: path.join(o.root, 'coordinator'),
      participantUrls: BANKS.map((bank) => `${serviceUrls[bank]}/twopc`),
    }).then((c) => {
      track(c.process, 'coordinator');
      return c;
    }),
  ]);

  o.note(`starting the account services (${BANKS.map((b) => `${b} at ${serviceUrls[b]}`).join(', ')})…`);
  await settleAll(
    BANKS.map(async (bank, i) => {
      const { proc } = await NodeProcess.start({
        label: bank,
        entry: 'coordinator/demo/account-service',
        env: {
          NAME: bank,
          PORT: String(ports[i]),
          DATABASE_URL: databases[bank],
          COORDINATOR_URL: coordinator.url,
          TWOPC_API_TOKEN: coordinator.apiToken,
          TWOPC_PARTICIPANT_SECRET: coordinator.participantSecret,
          SEED_ACCOUNTS: String(o.accounts),
          SEED_BALANCE: String(o.initialBalance),
          POOL_SIZE: String(o.poolSize),
        },
        ready: /"ready":true/,
      });
      track(proc, `${bank} service`);
    }),
  );
  return {
    coordinator,
    serviceUrls,
    databases,
    logTails: () => processes.map((p) => p.tail()).join('\n'),
  };
}

async function startDatabase(bank: Bank, o: BankSystemOptions): Promise<string> {
  const cluster = await LocalPostgres.start({ name: `demo-${bank}` });
  o.teardown.add(`stop the ${bank} cluster`, () => cluster.destroy());
  o.reaper.add('pgdata', cluster.dataDir);
  if (process.env.TWOPC_KEEP_CLUSTERS !== '1') o.reaper.add('dir', cluster.dir);
  return cluster.createDatabase(bank);
}

/** Like Promise.all, but waits for every start to settle first, so each one that succeeded got registered for teardown. */
async function settleAll<T extends readonly unknown[] | []>(starts: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = (await Promise.allSettled(starts)) as PromiseSettledResult<unknown>[];
  for (const s of settled) if (s.status === 'rejected') throw s.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}
