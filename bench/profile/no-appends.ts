import type { AppendableRecord, DecisionLog } from '../../coordinator/engine/ports/decision-log';
import { ForwardingDecisionLog } from './forwarding-decision-log';

/**
 * What-if only, NOT a valid log: every append (begin, enlist, complete) is
 * dropped and answered at once; decisions are written and forced as usual.
 * The speed-up over `engine` bounds what those records cost altogether
 * (checks, encoding, the index, the write and its thread-pool round trip).
 */
class NoAppendLog extends ForwardingDecisionLog {
  override append(_record: AppendableRecord): Promise<void> {
    return Promise.resolve();
  }
}

export function noAppends(log: DecisionLog): DecisionLog {
  return new NoAppendLog(log);
}
