import { TwopcError } from './ports/protocol';
import type { EngineContext } from './engine-context';

/**
 * Why a new transaction is refused, or undefined when it may begin: memory
 * is bounded by the caps (engine config `maxActiveTransactions`,
 * `maxRememberedOutcomes`), and past them the caller gets a clear,
 * retryable 503 `over-capacity` instead of the process growing until it is
 * killed. Nothing already begun is touched: its transaction ends as usual,
 * and an outcome within retention is never forgotten to make room.
 */
export function admissionRefusal(ctx: EngineContext): TwopcError | undefined {
  const { maxActiveTransactions, maxRememberedOutcomes } = ctx.config;
  const active = ctx.live.size;
  if (active >= maxActiveTransactions) {
    return new TwopcError('over-capacity', `the coordinator runs ${active} transactions, its cap (maxActiveTransactions ${maxActiveTransactions}); retry once some have ended`, {
      limit: 'maxActiveTransactions',
    });
  }
  const outcomes = ctx.log.held?.().outcomes ?? 0;
  if (outcomes >= maxRememberedOutcomes) {
    return new TwopcError(
      'over-capacity',
      `the decision log holds ${outcomes} outcomes of completed transactions for their retention period, its cap (maxRememberedOutcomes ${maxRememberedOutcomes}); retry later: expired outcomes are forgotten once they are half of those held, or with the next write`,
      { limit: 'maxRememberedOutcomes' },
    );
  }
  return undefined;
}
