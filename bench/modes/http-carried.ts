import { registrationFrom, withCarriedTransaction, type CarriedRegistration, type CommitOptions } from '../../participant-sdk/src';
import type { BenchMode } from '../bench-mode';
import { ServiceRig } from '../service-rig';

/**
 * `http` with carried registration (docs/protocol.md): the coordinator runs
 * with `engine.carriedRegistration`, the bench mints the id (no begin), each
 * service opens its branch without enlisting and answers a signed
 * registration, and the one commit carries both. Same processes, services
 * and statement as `http`.
 */
export const httpCarriedMode: BenchMode = httpCarriedModeWith('http-carried', 'http with carried registration: no begin, no enlist; the commit carries both services’ signed registrations');

/** What-if: `http-carried` whose commits are answered at the decision (`answerAt: 'decided'`): every services-path lever at once. */
export const httpCarriedDecidedMode: BenchMode = httpCarriedModeWith('http-carried-decided', "http-carried with commit answered at the decision (answerAt 'decided')", { answerAt: 'decided' });

function httpCarriedModeWith(name: string, summary: string, commit: CommitOptions = {}): BenchMode {
  return {
  name,
  summary,
  async setup(ctx) {
    const rig = await ServiceRig.start(ctx, name, { engine: { carriedRegistration: true } });
    const tally = ctx.tally;
    const step = <T>(kind: string, run: () => Promise<T>): Promise<T> => (tally ? tally.time(`${name}: ${kind}`, run) : run());
    const registration = (headers: Parameters<typeof registrationFrom>[0]['headers']): CarriedRegistration => {
      const r = registrationFrom({ headers });
      if (!r) throw new Error('a service answered without a registration');
      return r;
    };
    return {
      async transfer(t) {
        const tx = await rig.twopc.open({ carried: true });
        if (!tx.carried) throw new Error('the coordinator does not offer carried registration');
        const headers = withCarriedTransaction(tx.id);
        // ledger_a first: the canonical lock order every mode keeps.
        const a = registration(await step('1 ledger_a service (BEGIN, UPDATE)', () => rig.call('ledger_a', '/transfer', { account: t.accountA, delta: t.delta }, headers)));
        let b: CarriedRegistration;
        try {
          b = registration(await step('2 ledger_b service (BEGIN, UPDATE)', () => rig.call('ledger_b', '/transfer', { account: t.accountB, delta: -t.delta }, headers)));
        } catch (e) {
          // Carried abort: releases ledger_a's row lock now rather than at its branch's timeout.
          await rig.twopc.abort(tx.id, { registrations: [a] }).catch(() => undefined);
          throw e;
        }
        await step('3 commit (record, prepare x2, decide, commit x2)', () => rig.twopc.commit(tx.id, { ...commit, registrations: [a, b] }));
        rig.completed();
      },
      profileNotes: () => rig.notes(),
      close: () => rig.close(),
    };
  },
};
}
