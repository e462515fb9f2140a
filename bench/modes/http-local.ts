import type { BenchMode } from '../bench-mode';
import { ServiceRig } from '../service-rig';

/**
 * The fair baseline of `http`: what the same application does with the same
 * services without a coordinator. Same processes (`twopc serve` idles), same
 * client, same pools; each service commits its leg locally (`POST
 * /transfer-local`: BEGIN; UPDATE_BALANCE; COMMIT). Not atomic across the two
 * ledgers, as a team's plain HTTP calls are not.
 */
export const httpLocalMode: BenchMode = {
  name: 'http-local',
  summary: 'the http processes and client, each service committing its leg locally (BEGIN; UPDATE; COMMIT): no coordinator call, not atomic',
  async setup(ctx) {
    const rig = await ServiceRig.start(ctx, 'http-local');
    const tally = ctx.tally;
    const step = <T>(kind: string, run: () => Promise<T>): Promise<T> => (tally ? tally.time(`http-local: ${kind}`, run) : run());
    return {
      async transfer(t) {
        await step('1 ledger_a service (BEGIN, UPDATE, COMMIT)', () => rig.call('ledger_a', '/transfer-local', { account: t.accountA, delta: t.delta }));
        await step('2 ledger_b service (BEGIN, UPDATE, COMMIT)', () => rig.call('ledger_b', '/transfer-local', { account: t.accountB, delta: -t.delta }));
        rig.completed();
      },
      profileNotes: () => rig.notes(),
      close: () => rig.close(),
    };
  },
};
