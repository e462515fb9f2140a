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
    // Room comes back as outcomes pass their retention: ask the log to forget those now (it does so at most
    // once per compaction interval), not when an idle log's own rule (half of them expired) would.
    void ctx.log.compactIfDue?.({ makeRoom: true }).catch(() => undefined);
    return new TwopcError(
      'over-capacity',
      `the decision log holds ${outcomes} outcomes of completed transactions for their retention period, its cap (maxRememberedOutcomes ${maxRememberedOutcomes}); retry later: those past their retention are forgotten at the log's next compaction`,
      { limit: 'maxRememberedOutcomes' },
    );
  }
  return undefined;
}
