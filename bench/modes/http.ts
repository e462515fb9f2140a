import { withTransaction, type CommitOptions } from '../../participant-sdk/src';
import type { BenchMode, ModeContext, ModeRunner } from '../bench-mode';
import { ServiceRig } from '../service-rig';
import { baseDir } from './base-checkout';

/**
 * twopc as services, each its own process: the coordinator (`twopc serve`,
 * file decision log) and one SDK participant service per ledger. The bench is
 * the application, over keep-alive HTTP (undici): `begin` at the
 * coordinator, `POST /transfer` to the ledger_a service then to the ledger_b
 * service (each enlists its branch and runs UPDATE_BALANCE in it, held), then
 * `commit`, which the coordinator runs as prepare on both services, a forced
 * decision, and commit on both.
 */
export const httpMode: BenchMode = httpModeWith('http', 'twopc serve + one SDK participant service per ledger, each its own process; the bench begins, calls both services, commits over HTTP');

/** What-if: `http` with the coordinator's batching of participant calls off (every prepare, commit, rollback its own request). */
export const httpNoBatchMode: BenchMode = httpModeWith('http-nobatch', 'http with participantCalls.batching off: the per-call protocol only', { coordinator: { participantCalls: { batching: false } } });

/** What-if: `http` whose commits are answered at the decision (`answerAt: 'decided'`), phase 2 after the answer. */
export const httpDecidedMode: BenchMode = httpModeWith('http-decided', "http with commit answered at the decision (answerAt 'decided')", { commit: { answerAt: 'decided' } });

/** `http` run from the checkout in BENCH_BASE_DIR (its coordinator and services; this bench as the client). */
export const httpBaseMode: BenchMode = httpModeWith('http-base', 'http with the coordinator and services of the checkout in BENCH_BASE_DIR', { base: true });

interface Variant {
  /** Run the processes from BENCH_BASE_DIR's checkout. */
  base?: boolean;
  /** The `twopc serve` config file's contents. */
  coordinator?: Record<string, unknown>;
  commit?: CommitOptions;
}

function httpModeWith(name: string, summary: string, variant: Variant = {}): BenchMode {
  return { name, summary, setup: (ctx) => setupHttp(ctx, name, variant) };
}

async function setupHttp(ctx: ModeContext, name: string, variant: Variant): Promise<ModeRunner> {
  const rig = await ServiceRig.start(ctx, name, variant.coordinator, variant.base ? baseDir(name) : undefined);
  const tally = ctx.tally;
  const step = <T>(kind: string, run: () => Promise<T>): Promise<T> => (tally ? tally.time(`${name}: ${kind}`, run) : run());
  const headers = (id: string) => withTransaction(id, {});
  return {
    async transfer(t) {
      const { id } = await step('1 begin', () => rig.twopc.begin());
      try {
        // ledger_a first: the canonical lock order every mode keeps.
        await step('2 ledger_a service (enlist, BEGIN, UPDATE)', () => rig.call('ledger_a', '/transfer', { account: t.accountA, delta: t.delta }, headers(id)));
        await step('3 ledger_b service (enlist, BEGIN, UPDATE)', () => rig.call('ledger_b', '/transfer', { account: t.accountB, delta: -t.delta }, headers(id)));
      } catch (e) {
        // Releases the other branch's row lock now rather than at the transaction's timeout.
        await rig.twopc.abort(id).catch(() => undefined);
        throw e;
      }
      await step('4 commit (prepare x2, decide, commit x2)', () => rig.twopc.commit(id, variant.commit));
      rig.completed();
    },
    profileNotes: () => rig.notes(),
    close: () => rig.close(),
  };
}
