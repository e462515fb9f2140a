import type { AppendableRecord, AppendOptions, DecisionLog } from '../../coordinator/engine/ports/decision-log';
import { ForwardingDecisionLog } from './forwarding-decision-log';

/**
 * What-if only, NOT crash-safe: unforced appends (begin, enlist, complete) are
 * still queued, in order, but the engine does not wait for them. The speed-up
 * over `engine` is what those waits cost (in the file log they queue behind
 * the group fdatasync in flight).
 */
class NoWaitAppendLog extends ForwardingDecisionLog {
  override append(record: AppendableRecord, options?: AppendOptions): Promise<void> {
    this.inner.append(record, options).catch(() => undefined);
    return Promise.resolve();
  }
}

export function noWaitAppends(log: DecisionLog): DecisionLog {
  return new NoWaitAppendLog(log);
}
