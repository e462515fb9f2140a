import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import type { Pool } from 'pg';
import { Pool as HttpPool } from 'undici';
import { RunningCoordinator, startCoordinator } from '../coordinator/demo/coordinator-process';
import { freePort } from '../coordinator/demo/free-port';
import { CoordinatorClient } from '../participant-sdk/src';
import type { ModeContext } from './bench-mode';
import { ModeProcesses } from './mode-processes';
import { coordinatorTimings } from './profile/coordinator-metrics';
import { ProcessCpuMeter } from './profile/process-cpu';
import { ServedMeter } from './profile/served-counter';
import { Ledger, LEDGERS } from './transfer-plan';

// The runner's pools are made from the cluster's connection config; pg keeps
// it, and it is what a service process needs to reach the same ledger.
function connectionString(pool: Pool): string {
  const { user, host, port, database } = pool.options;
  return `postgres://${user}@${host}:${port}/${database}`;
}

/**
 * What the services modes (`http`, `http-local`) share, so they differ only
 * in the calls the bench makes: `twopc serve`, then one participant service
 * per ledger (`bench/http-ledger-service.ts`), each its own process, and the
 * bench's keep-alive clients (the SDK's CoordinatorClient, one undici pool
 * per service), with the CPU and served-request meters of --profile.
 * With --cpu-profile each process writes V8 profiles of its whole life when
 * it exits, one per thread (tsx's loader runs in a worker), into a directory of its own.
 */
export class ServiceRig {
  private follow?: NodeJS.Timeout;
  private serverNotes: string[] = [];

  private constructor(
    private readonly ctx: ModeContext,
    private readonly processes: ModeProcesses,
    readonly coordinator: RunningCoordinator,
    readonly twopc: CoordinatorClient,
    readonly services: ReadonlyMap<Ledger, HttpPool>,
    readonly cpu: ProcessCpuMeter,
    private readonly served: ServedMeter,
  ) {}

  /**
   * `coordinatorConfig`: the `twopc serve` config file's contents (a what-if mode's settings);
   * `root`: another checkout to run the coordinator and the services from (a `*-base` mode).
   */
  static async start(ctx: ModeContext, prefix: string, coordinatorConfig?: Record<string, unknown>, root?: string): Promise<ServiceRig> {
    const processes = ModeProcesses.create();
    try {
      const profile = (name: string) => (ctx.options.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(ctx.options.cpuProfile, `${prefix}-${name}`)}`] : []);
      const ports = await Promise.all(LEDGERS.map(() => freePort()));
      const urls = new Map(LEDGERS.map((ledger, i) => [ledger, `http://127.0.0.1:${ports[i]}`]));
      const coordinator = await startCoordinator({
        dir: ctx.tempDir('coordinator'),
        participantUrls: [...urls.values()].map((u) => `${u}/twopc`),
        nodeArgs: profile('coordinator'),
        ...(root ? { root } : {}),
        ...(coordinatorConfig ? { config: coordinatorConfig } : {}),
      });
      processes.adopt(coordinator.process);
      await Promise.all(
        LEDGERS.map((ledger, i) =>
          processes.start({
            label: `${ledger} service`,
            entry: 'bench/http-ledger-service',
            nodeArgs: profile(`${ledger}-service`),
            ...(root ? { root } : {}),
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
      const twopc = new CoordinatorClient({ url: coordinator.url, token: coordinator.apiToken, connections: ctx.options.concurrency });
      const services = new Map([...urls].map(([ledger, url]) => [ledger, new HttpPool(url, { connections: ctx.options.concurrency })]));
      const served = new ServedMeter([
        { label: 'coordinator', url: coordinator.url, kind: 'coordinator' },
        ...LEDGERS.map((ledger) => ({ label: `${ledger} service`, url: urls.get(ledger)!, kind: 'bench' as const })),
      ]);
      const rig = new ServiceRig(ctx, processes, coordinator, twopc, services, new ProcessCpuMeter(processes.pids()), served);
      if (ctx.tally) {
        await served.start();
        // The runner records into the tally during this mode's measured runs only; the meter follows it.
        const tally = ctx.tally;
        rig.follow = setInterval(() => rig.cpu.setOn(tally.recording), 20);
      }
      return rig;
    } catch (e) {
      await processes.stopAll();
      throw e;
    }
  }

  /** `POST <path>` on a ledger's service, with the transaction header when given; it must answer 204. */
  /** One business call; resolves with the answer's headers (a carried registration travels in them). */
  async call(ledger: Ledger, path: string, body: unknown, headers: Record<string, string> = {}): Promise<IncomingHttpHeaders> {
    const res = await this.services.get(ledger)!.request({
      path,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    const text = await res.body.text();
    if (res.statusCode !== 204) throw new Error(`${ledger} ${path} answered ${res.statusCode}: ${text}`);
    return res.headers;
  }

  /** A transfer completed: counted by the meters that are on. */
  completed(): void {
    this.served.count();
    if (this.cpu.on) this.cpu.count();
  }

  notes(): string[] {
    return [...this.served.notes(), ...this.cpu.notes(), ...this.serverNotes];
  }

  async close(): Promise<void> {
    if (this.follow) clearInterval(this.follow);
    this.cpu.setOn(false);
    if (this.ctx.tally) {
      await this.served.finish().catch((e: unknown) => {
        this.serverNotes.push(`served-request counts unavailable: ${String(e)}`);
      });
      this.serverNotes.push(...(await coordinatorTimings(this.coordinator.url).catch((e: unknown) => [`coordinator metrics unavailable: ${String(e)}`])));
    }
    await Promise.allSettled([this.twopc.close(), ...[...this.services.values()].map((s) => s.close())]);
    // Newest first: the services (their held branches roll back while the coordinator still answers), then the coordinator.
    await this.processes.stopAll();
  }
}
