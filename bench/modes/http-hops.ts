import { randomUUID } from 'node:crypto';
import { Pool as HttpPool } from 'undici';
import { freePort } from '../../coordinator/demo/free-port';
import type { BenchMode } from '../bench-mode';
import { ModeProcesses } from '../mode-processes';
import { ProcessCpuMeter } from '../profile/process-cpu';
import { ServedMeter } from '../profile/served-counter';
import { LEDGERS } from '../transfer-plan';

async function post(pool: HttpPool, path: string, body: unknown, headers: Record<string, string> = {}): Promise<string> {
  const res = await pool.request({ path, method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${path} answered ${res.statusCode}: ${text}`);
  return text;
}

interface HopsFlow {
  /** Carried registration: no begin, no enlist; each business call answers a registration, the commit carries them. */
  carried: boolean;
  /** The coordinator stand-in batches its calls per service the way the real coordinator does. */
  batch: boolean;
}

/**
 * What-if: a services mode's HTTP exchanges per transfer and nothing else.
 * Same processes (a coordinator stand-in and one service stand-in per
 * ledger, `bench/http-hop-stub.ts`), same libraries (express, undici
 * keep-alive pools), but no database, log, auth or validation.
 *
 * `http-hops`: the `http` mode's per-call pattern, ten exchanges (begin; each
 * service enlists during its call; commit makes the coordinator call
 * prepare then commit on both). Its tps is the ceiling of that design on
 * this machine; `http` vs `http-hops` is what twopc itself costs on top.
 *
 * `http-carried-hops` / `http-carried-hops-batched`: carried registration
 * (the client mints the id; each business call answers a registration; one
 * commit carries them; prepare and commit to each service, alone or
 * batched): the ceiling of that design.
 */
export function httpHopsMode(name: string, flow: HopsFlow): BenchMode {
  return {
    name,
    summary: flow.carried
      ? `carried registration's exchanges through do-nothing stand-ins: 2 business calls answering registrations, 1 commit, prepare + commit per service${flow.batch ? ' (batched)' : ''}`
      : "the http mode's 10 HTTP exchanges per transfer through do-nothing stand-ins (express + undici), no database",
    async setup(ctx) {
      const processes = ModeProcesses.create();
      const ports = await Promise.all([freePort(), ...LEDGERS.map(() => freePort())]);
      const [coordinatorUrl, ...serviceUrls] = ports.map((p) => `http://127.0.0.1:${p}`);
      const common = { FLOW: flow.carried ? 'carried' : 'per-call', BATCH: flow.batch ? '1' : '0' };
      const stub = (label: string, env: Record<string, string>) =>
        processes.start({ label, entry: 'bench/http-hop-stub', env: { ...common, ...env }, ready: /"ready":true/ });
      await Promise.all([
        stub('coordinator stub', { ROLE: 'coordinator', PORT: String(ports[0]), SERVICE_URLS: serviceUrls.join(',') }),
        ...LEDGERS.map((ledger, i) => stub(`${ledger} service stub`, { ROLE: 'service', PORT: String(ports[i + 1]), COORDINATOR_URL: coordinatorUrl })),
      ]).catch(async (e: unknown) => {
        await processes.stopAll();
        throw e;
      });
      const meter = new ProcessCpuMeter(processes.pids());
      const served = new ServedMeter([
        { label: 'coordinator stub', url: coordinatorUrl, kind: 'bench' },
        ...LEDGERS.map((ledger, i) => ({ label: `${ledger} service stub`, url: serviceUrls[i], kind: 'bench' as const })),
      ]);
      if (ctx.tally) await served.start();
      const coordinator = new HttpPool(coordinatorUrl, { connections: ctx.options.concurrency });
      const services = serviceUrls.map((url) => new HttpPool(url, { connections: ctx.options.concurrency }));
      const tally = ctx.tally;
      const follow = tally && setInterval(() => meter.setOn(tally.recording), 20);
      return {
        async transfer(t) {
          if (flow.carried) {
            const id = randomUUID();
            const a = JSON.parse(await post(services[0], '/transfer', { account: t.accountA, delta: t.delta }, { 'twopc-transaction': id })) as { registration: unknown };
            const b = JSON.parse(await post(services[1], '/transfer', { account: t.accountB, delta: -t.delta }, { 'twopc-transaction': id })) as { registration: unknown };
            await post(coordinator, `/v1/transactions/${id}/commit`, { registrations: [a.registration, b.registration] });
          } else {
            const { id } = JSON.parse(await post(coordinator, '/v1/transactions', {})) as { id: string };
            await post(services[0], '/transfer', { account: t.accountA, delta: t.delta }, { 'twopc-transaction': id });
            await post(services[1], '/transfer', { account: t.accountB, delta: -t.delta }, { 'twopc-transaction': id });
            await post(coordinator, `/v1/transactions/${id}/commit`, {});
          }
          served.count();
          if (meter.on) meter.count();
        },
        profileNotes: () => [...served.notes(), ...meter.notes()],
        async close() {
          if (follow) clearInterval(follow);
          meter.setOn(false);
          if (tally) await served.finish().catch(() => undefined);
          await Promise.allSettled([coordinator.close(), ...services.map((s) => s.close())]);
          await processes.stopAll();
        },
      };
    },
  };
}
