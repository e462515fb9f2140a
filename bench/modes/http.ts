import path from 'node:path';
import type { Pool } from 'pg';
import { Pool as HttpPool } from 'undici';
import { RunningCoordinator, startCoordinator } from '../../coordinator/demo/coordinator-process';
import { CoordinatorClient, withTransaction } from '../../participant-sdk/src';
import { freePort } from '../../coordinator/demo/free-port';
import type { BenchMode, ModeContext } from '../bench-mode';
import { ModeProcesses } from '../mode-processes';
import { coordinatorTimings } from '../profile/coordinator-metrics';
import { ProcessCpuMeter } from '../profile/process-cpu';
import { Ledger, LEDGERS } from '../transfer-plan';

// The runner's pools are made from the cluster's connection config; pg keeps
// it, and it is what a service process needs to reach the same ledger.
function connectionString(pool: Pool): string {
  const { user, host, port, database } = pool.options;
  return `postgres://${user}@${host}:${port}/${database}`;
}

/**
 * `twopc serve`, then one participant service per ledger (`bench/http-ledger-service.ts`).
 * With --cpu-profile each writes V8 profiles of its whole life when it exits,
 * one per thread (tsx's loader runs in a worker), into a directory of its own.
 */
async function startProcesses(ctx: ModeContext, processes: ModeProcesses): Promise<{ coordinator: RunningCoordinator; urls: Map<Ledger, string> }> {
  const profile = (name: string) => (ctx.options.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(ctx.options.cpuProfile, `http-${name}`)}`] : []);
  const ports = await Promise.all(LEDGERS.map(() => freePort()));
  const urls = new Map(LEDGERS.map((ledger, i) => [ledger, `http://127.0.0.1:${ports[i]}`]));
  const coordinator = await startCoordinator({ dir: ctx.tempDir('coordinator'), participantUrls: [...urls.values()].map((u) => `${u}/twopc`), nodeArgs: profile('coordinator') });
  processes.adopt(coordinator.process);
  await Promise.all(
    LEDGERS.map((ledger, i) =>
      processes.start({
        label: `${ledger} service`,
        entry: 'bench/http-ledger-service',
        nodeArgs: profile(`${ledger}-service`),
        env: {
          NAME: ledger,
          PORT: String(ports[i]),
          DATABASE_URL: connectionString(ctx.pool(ledger)),
          // The same pool size every mode gets per ledger.
          POOL_SIZE: String(ctx.options.poolSize),
          COORDINATOR_URL: coordinator.url,
          TWOPC_API_TOKEN: coordinator.apiToken,
          TWOPC_PARTICIPANT_SECRET: coordinator.participantSecret,
        },
        ready: /"ready":true/,
      }),
    ),
  );
  return { coordinator, urls };
}

/**
 * twopc as services, each its own process: the coordinator (`twopc serve`,
 * file decision log) and one SDK participant service per ledger. The bench is
 * the application, over keep-alive HTTP (undici): `begin` at the
 * coordinator, `POST /transfer` to the ledger_a service then to the ledger_b
 * service (each enlists its branch and runs UPDATE_BALANCE in it, held), then
 * `commit`, which the coordinator runs as prepare on both services, a forced
 * decision, and commit on both.
 */
export const httpMode: BenchMode = {
  name: 'http',
  summary: 'twopc serve + one SDK participant service per ledger, each its own process; the bench begins, calls both services, commits over HTTP',
  async setup(ctx) {
    const processes = ModeProcesses.create();
    const { coordinator, urls } = await startProcesses(ctx, processes).catch(async (e: unknown) => {
      await processes.stopAll();
      throw e;
    });
    const twopc = new CoordinatorClient({ url: coordinator.url, token: coordinator.apiToken, connections: ctx.options.concurrency });
    const services = new Map([...urls].map(([ledger, url]) => [ledger, new HttpPool(url, { connections: ctx.options.concurrency })]));
    const tally = ctx.tally;
    const step = <T>(kind: string, run: () => Promise<T>): Promise<T> => (tally ? tally.time(`http: ${kind}`, run) : run());
    const cpu = new ProcessCpuMeter(processes.pids());
    // The runner records into the tally during this mode's measured runs only; the meter follows it.
    const follow = tally && setInterval(() => cpu.setOn(tally.recording), 20);
    let serverNotes: string[] = [];

    const leg = async (ledger: Ledger, txId: string, account: number, delta: number) => {
      const res = await services.get(ledger)!.request({
        path: '/transfer',
        method: 'POST',
        headers: withTransaction(txId, { 'content-type': 'application/json' }),
        body: JSON.stringify({ account, delta }),
      });
      const text = await res.body.text();
      if (res.statusCode !== 204) throw new Error(`${ledger} /transfer answered ${res.statusCode}: ${text}`);
    };

    return {
      async transfer(t) {
        const { id } = await step('1 begin', () => twopc.begin());
        try {
          // ledger_a first: the canonical lock order every mode keeps.
          await step('2 ledger_a service (enlist, BEGIN, UPDATE)', () => leg('ledger_a', id, t.accountA, t.delta));
          await step('3 ledger_b service (enlist, BEGIN, UPDATE)', () => leg('ledger_b', id, t.accountB, -t.delta));
        } catch (e) {
          // Releases the other branch's row lock now rather than at the transaction's timeout.
          await twopc.abort(id).catch(() => undefined);
          throw e;
        }
        await step('4 commit (prepare x2, decide, commit x2)', () => twopc.commit(id));
        if (cpu.on) cpu.count();
      },
      profileNotes: () => [...cpu.notes(), ...serverNotes],
      async close() {
        if (follow) clearInterval(follow);
        cpu.setOn(false);
        if (tally) serverNotes = await coordinatorTimings(coordinator.url).catch((e: unknown) => [`coordinator metrics unavailable: ${String(e)}`]);
        await Promise.allSettled([twopc.close(), ...[...services.values()].map((s) => s.close())]);
        // Newest first: the services (their held branches roll back while the coordinator still answers), then the coordinator.
        await processes.stopAll();
      },
    };
  },
};
